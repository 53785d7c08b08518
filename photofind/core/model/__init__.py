"""The model package: everything about CLIP models, behind one small interface.

- encoder.py      the interface (Encoder) the indexer, search and GUI use
- loading.py      settings -> an Encoder on its runtime; the slot that holds it
- runtime.py      choosing the runtime (auto/onnx/torch), CPU threads
- sources.py      specs -> files: local folders, the Hugging Face cache, downloads
- geometry.py     the input geometry (Preprocess), without numpy: decode workers get it
- preprocess.py   the geometry from a model's config, and pixel normalisation, in numpy
- tokenizer.py    CLIP's tokenizer without torch (tokenizer.json)
- onnx_runtime.py ONNX Runtime (the only module that imports onnxruntime)
- torch_runtime.py torch and open_clip (the only one that imports them to run)
- export.py       open_clip -> an ONNX folder, parity checked
- fusion.py       the exported attention blocks as ONNX Runtime's fused operator

Importing this package imports neither torch nor onnxruntime.
"""
