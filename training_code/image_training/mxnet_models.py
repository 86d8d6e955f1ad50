"""ResNets of the built-in algorithm's depths, on Gluon's ResNet V2 building blocks.

ImageNet style (18, 34, 50, 101, 152, 200): 7x7 stem, four stages. Gluon's model zoo has
18-152; ResNet-200 is the same family with [3, 24, 36, 3] bottleneck blocks. CIFAR style
(20, 32, 44, 56, 110): a 3x3 stem and three stages of (depth - 2) / 6 basic blocks with 16, 32
and 64 channels, for small images.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from mxnet.gluon.model_zoo.vision.resnet import BasicBlockV2, BottleneckV2, ResNetV2

# depth -> (block, blocks per stage, channels: stem then per stage, thumbnail stem)
_SPECS: Dict[int, Tuple[Any, List[int], List[int], bool]] = {
    18: (BasicBlockV2, [2, 2, 2, 2], [64, 64, 128, 256, 512], False),
    34: (BasicBlockV2, [3, 4, 6, 3], [64, 64, 128, 256, 512], False),
    50: (BottleneckV2, [3, 4, 6, 3], [64, 256, 512, 1024, 2048], False),
    101: (BottleneckV2, [3, 4, 23, 3], [64, 256, 512, 1024, 2048], False),
    152: (BottleneckV2, [3, 8, 36, 3], [64, 256, 512, 1024, 2048], False),
    200: (BottleneckV2, [3, 24, 36, 3], [64, 256, 512, 1024, 2048], False),
}
for _depth in (20, 32, 44, 56, 110):
    _n = (_depth - 2) // 6
    _SPECS[_depth] = (BasicBlockV2, [_n, _n, _n], [16, 16, 32, 64], True)


def resnet(num_layers: int, num_classes: int) -> ResNetV2:
    """An uninitialised ResNet V2 of ``num_layers`` with ``num_classes`` outputs."""
    if num_layers not in _SPECS:
        raise ValueError(f"no ResNet with {num_layers} layers; choose one of {sorted(_SPECS)}")
    block, layers, channels, thumbnail = _SPECS[num_layers]
    return ResNetV2(block, layers, channels, classes=num_classes, thumbnail=thumbnail)


def with_new_output(net: ResNetV2, num_classes: int) -> ResNetV2:
    """Swap the classifier for a new, uninitialised one with ``num_classes`` outputs (transfer
    learning: the rest of the network keeps its weights and is fine-tuned)."""
    from mxnet.gluon import nn

    with net.name_scope():
        net.output = nn.Dense(num_classes)
    return net


def load_exported(net: ResNetV2, params_file: str, ctx: Any) -> None:
    """Load a .params file written by ``HybridBlock.export`` (names like
    ``arg:resnetv20_conv0_weight``) into ``net``, whatever prefix either network got."""
    import mxnet as mx

    saved = {}
    for key, value in mx.nd.load(params_file).items():
        name = key.split(":", 1)[1] if key[:4] in ("arg:", "aux:") else key
        saved[name.split("_", 1)[1] if "_" in name else name] = value
    params = net.collect_params()
    ours = {
        name[len(net.prefix) :] if name.startswith(net.prefix) else name.split("_", 1)[1]: p
        for name, p in params.items()
    }
    missing = sorted(set(ours) - set(saved))
    if missing:
        raise ValueError(f"the saved model lacks {len(missing)} parameters, e.g. {missing[:3]}")
    for name, param in ours.items():
        known = tuple(param.shape or ())
        if len(known) == len(saved[name].shape) and any(k and k != s for k, s in zip(known, saved[name].shape)):
            raise ValueError(f"parameter {name} has shape {saved[name].shape} in the saved model, {param.shape} here")
        param._load_init(saved[name], ctx)
