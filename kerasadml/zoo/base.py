"""What the two zoo models share: they compute their own loss, so ``compile`` takes no
``loss`` and ``fit`` no ``sample_weight``; both say so instead of ignoring them."""

from __future__ import annotations


def check_compile_kwargs(model_name: str, kwargs: dict) -> dict:
    """``kwargs`` for ``keras.Model.compile`` without ``loss``; a ``loss`` other than
    ``None`` is refused.

    The zoo models compute their objective in ``compute_loss`` from constructor arguments
    (saved with the model); a ``loss=`` given to ``compile`` used to be dropped silently.

    Args:
        model_name: ``"ADML"`` or ``"AADML"``, for the message.
        kwargs: the keyword arguments given to ``compile``.

    Raises:
        ValueError: naming ``loss`` and where the objective is configured.

    Example:
        >>> check_compile_kwargs("ADML", {"metrics": None})
        {'metrics': None}
    """
    kwargs = dict(kwargs)
    loss = kwargs.pop("loss", None)
    if loss is not None:
        raise ValueError(
            f"{model_name}.compile(loss={loss!r}): {model_name} computes its own loss (compute_loss); "
            "choose and weight its terms with the constructor arguments (docs/methods.md), "
            "not with compile(loss=...)"
        )
    return kwargs


def check_no_sample_weight(model_name: str, sample_weight) -> None:
    """Refuse per-sample weights, which the zoo models' objectives do not use.

    Their batches are class-balanced by the samplers (every keyword or class equally
    often), and the pair- and proxy-based terms have no per-sample weighting that would
    mean the same thing as in a per-example loss; silently ignoring the weights would
    train something other than what was asked.

    Raises:
        ValueError: when ``sample_weight`` is not ``None``.
    """
    if sample_weight is not None:
        raise ValueError(
            f"{model_name} does not use sample_weight (its batches are class-balanced by the "
            "sampler and its losses are pair/proxy based): balance the data instead, e.g. with "
            "the dataset builders' class-balanced sampling"
        )
