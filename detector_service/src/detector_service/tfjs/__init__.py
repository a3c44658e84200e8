"""TensorFlow.js graph models: reading them (:mod:`.graph`) and converting them to
ONNX (:mod:`.onnx_export`)."""
