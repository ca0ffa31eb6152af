"""Speech data for keyword spotting: the LibriPhrase format, phonemes, the tf.data
training pipeline and SynthPhrase, the offline LibriPhrase-format set built with eSpeak NG
(docs/data.md §1). The tf.data builders import TensorFlow and are imported on use."""
