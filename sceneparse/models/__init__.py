"""Models: the pyramid front end and the registered multiscale convnets."""

from sceneparse.models.multiscale import (  # noqa: F401  (registers the factories)
    ModernEncoder,
    MultiscaleConvNet,
    PaperEncoder,
    msconvnet,
    msconvnet_paper,
    msconvnet_rgbd,
)
from sceneparse.models.pyramid import LaplacianPyramid, local_contrast_normalize  # noqa: F401
