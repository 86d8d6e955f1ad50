"""The dataset-format core: read, write and validate every dataset format of the product.

Shared by the ``imgclf`` CLI, the validator Lambda and the training code (which runs in the
MXNet 1.9 container on Python 3.8, so this package keeps to Python 3.8 and imports only the
standard library, numpy and Pillow).
"""
