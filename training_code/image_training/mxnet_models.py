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
