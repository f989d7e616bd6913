"""Models: the declared-metadata interface, the pyramid front end and the registered networks."""

from sceneparse.models.base import PretrainedCfg, SegmentationModel, model_cfg  # noqa: F401
from sceneparse.models.encdec import EncoderDecoder, encdec  # noqa: F401  (registers the factory)
from sceneparse.models.lraspp import LRASPP, lraspp_mobilenetv3  # noqa: F401  (registers the factory)
from sceneparse.models.multiscale import (  # noqa: F401  (registers the factories)
    ModernEncoder,
    MultiscaleConvNet,
    PaperEncoder,
    msconvnet,
    msconvnet_paper,
    msconvnet_rgbd,
)
from sceneparse.models.pyramid import LaplacianPyramid, local_contrast_normalize, uv_statistics  # noqa: F401
