# The public names of adaptd.adapters, by the module that defines them: what type checkers see,
# and what adapters/__init__.py hands lazy_loader.attach_stub, which imports each name from its
# module on first use. The "name as name" form marks a re-export in a stub.

from .codec import params_from_bytes as params_from_bytes
from .codec import params_to_bytes as params_to_bytes
from .codec import sha256_hex as sha256_hex
from .fast_weights import adapt as adapt
from .fast_weights import cross_entropy as cross_entropy
from .fast_weights import grad_and_loss as grad_and_loss
from .fast_weights import mse as mse
from .fewshot import Embedding as Embedding
from .fewshot import MatchingNet as MatchingNet
from .fewshot import MatchingSupport as MatchingSupport
from .fewshot import ProtoNet as ProtoNet
from .fewshot import Prototypes as Prototypes
from .fewshot import RelationNet as RelationNet
from .meta import ANIL as ANIL
from .meta import FOMAML as FOMAML
from .meta import MAML as MAML
from .meta import MetaSGD as MetaSGD
from .meta import Reptile as Reptile
from .network import PolicyNet as PolicyNet
from .network import init_params as init_params
from .protocol import EpisodeStats as EpisodeStats
from .protocol import FewShotClassifier as FewShotClassifier
from .protocol import FittedSupport as FittedSupport
from .protocol import MetaLearner as MetaLearner
from .protocol import MetaStats as MetaStats
from .protocol import Regularizer as Regularizer
from .protocol import Task as Task
from .serving import NumpyPolicy as NumpyPolicy
from .steps import InnerStep as InnerStep
from .tasks import EarlyStopping as EarlyStopping
from .tasks import EpisodeSampler as EpisodeSampler
from .tasks import SinusoidTasks as SinusoidTasks
from .tasks import evaluate_adaptation as evaluate_adaptation
from .tasks import evaluate_classifier as evaluate_classifier
from .tasks import meta_train as meta_train
from .tasks import regime_dataset as regime_dataset
from .tasks import rotated_digits as rotated_digits
from .tasks import split_classes as split_classes
from .tasks import tune as tune
from .types import LOSSES as LOSSES
from .types import AdaptResult as AdaptResult
from .types import Loss as Loss
from .types import Params as Params
