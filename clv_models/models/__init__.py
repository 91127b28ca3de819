"""CLV estimators: a naive baseline, the BG/NBD + Gamma-Gamma reference model, an XGBoost
baseline and the PyTorch deep (ZILN) model.

Every estimator follows the scikit-learn convention (``fit`` returns ``self``) and shares the
:class:`~clv_models.models.base.CLVModel` interface, so training, evaluation and scoring treat
them alike.
"""

from clv_models.models.base import CLVModel, Prediction, load_model
from clv_models.models.blend import BlendCLV
from clv_models.models.btyd import BGNBDGammaGammaCLV
from clv_models.models.deep import DeepCLV
from clv_models.models.naive import NaiveCLV
from clv_models.models.xgb import XGBoostCLV

__all__ = ["BGNBDGammaGammaCLV", "BlendCLV", "CLVModel", "DeepCLV", "NaiveCLV", "Prediction",
           "XGBoostCLV", "load_model"]
