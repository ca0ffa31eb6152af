"""Audio-visual data for retrieval: VEGAS/AVE-layout features (HDF5, npy folders), the
class-balanced tf.data pipeline and AV-Digits, the offline set built with eSpeak NG
(docs/data.md §2). The tf.data builders import TensorFlow and are imported on use."""
