"""ONNX export with a parity check, int8 quantization, and predictors that run on onnxruntime.

    encoderkit export RUN/model -o OUT --format onnx [--quantize int8] [--check-texts FILE]
    model = encoderkit.load(OUT)        # the same interface as the eager model, on onnxruntime

An exported directory::

    OUT/
      config.json           format "encoderkit-onnx": task, labels, max_length, pooling, normalize,
                            graph files, input and output names, opset, quantization, the parity
                            measured at export, the encoderkit version and the source weights' hash
      model.onnx            ids (B,T) int64 + attention_mask (B,T) int64 -> logits (B,C) and
                            sentence_embedding (B,H) (classification) or sentence_embedding (B,H)
                            (retrieval: the query tower, normalised when the model normalises)
      document_model.onnx   retrieval with separate towers only: the document tower
      tokenizer.json        the tokenizer (+ tokenizer_meta.json), as in a model directory

Batch and length axes are dynamic. Modules: ``export`` (torch -> ONNX, needs torch), ``parity``
(the check and its tolerances), ``int8`` (onnxruntime quantization), ``predictor`` and ``runtime``
(loading and running, torch-free).
"""

FORMAT = "encoderkit-onnx"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
INPUT_NAMES = ("input_ids", "attention_mask")
LOGITS = "logits"
EMBEDDING = "sentence_embedding"
#: task -> graph name -> file.
GRAPH_FILES = {"model": "model.onnx", "documents": "document_model.onnx"}
