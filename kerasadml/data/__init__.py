"""Reading, building and batching data.

Light modules are imported here; the tf.data builders (``kerasadml.data.speech.dataset``,
``kerasadml.data.av.dataset``) import TensorFlow and are imported on use.
"""

from kerasadml.data.audio_io import AudioError, load_audio, resample, tfio_kernels_available, write_wav_atomic
from kerasadml.data.av.features import (
    AVDataError,
    AVDataset,
    AVSplit,
    load_av,
    load_av_hdf5,
    load_av_npy_folder,
    save_av_hdf5,
)
from kerasadml.data.speech.libriphrase import (
    LIBRIPHRASE_COLUMNS,
    PairSet,
    TrainingItems,
    evaluation_pairs,
    read_libriphrase_csv,
    training_items,
    write_libriphrase_csv,
)
from kerasadml.data.speech.phonemizer import PhonemeVocabulary, Phonemizer, PhonemizerError

__all__ = [
    "AVDataError",
    "AVDataset",
    "AVSplit",
    "AudioError",
    "LIBRIPHRASE_COLUMNS",
    "PairSet",
    "PhonemeVocabulary",
    "Phonemizer",
    "PhonemizerError",
    "TrainingItems",
    "evaluation_pairs",
    "load_audio",
    "load_av",
    "load_av_hdf5",
    "load_av_npy_folder",
    "read_libriphrase_csv",
    "resample",
    "save_av_hdf5",
    "tfio_kernels_available",
    "training_items",
    "write_libriphrase_csv",
    "write_wav_atomic",
]
