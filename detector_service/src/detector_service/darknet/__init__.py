"""Darknet's model files: the ``.cfg`` network description, the ``.weights`` file,
and their conversion to an ONNX graph."""
