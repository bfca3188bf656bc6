"""Default-deny allowlists of pickle globals, one per loading context (threats.md 4.1, 4.2, 4.9).

A pickle global is the ``(module, qualname)`` pair that GLOBAL, INST or STACK_GLOBAL imports.
Everything not listed here for the loading context is blocked. Each pair is listed only for the
uses real files make of it, as PickleBall's per-library policies do:

* ``CALLABLE``: may be *called* -- by REDUCE, INST or OBJ, or by an allowed helper that calls
  its argument. Functions (``torch._utils._rebuild_tensor_v2``) and the classes whose
  constructor real files call (``collections.OrderedDict``, ``torch.Size``, enum classes).
* ``CONSTRUCTIBLE``: classes that may be *instantiated without running their constructor* --
  ``cls.__new__`` by NEWOBJ / NEWOBJ_EX or as the class argument of an allowed helper such as
  ``copyreg._reconstructor`` -- and whose instances BUILD then fills (``__setstate__`` or
  ``__dict__``). Full-module parts (``torch.nn.modules.linear.Linear``), estimators and
  ``TrainingArguments`` are here only: REDUCE of them would run ``__init__`` with arguments
  chosen by the file, which no real file does.
* ``REFERENCED``: values that may only appear as data and are never called (``torch.float32``,
  ``torch.FloatStorage`` in a persistent id, an activation function stored on a module).

Matching is exact on the canonical pair: no prefix match (``asyncio`` is not
``asyncio.unix_events``) and a dotted qualname (a protocol 4 attribute walk such as
``getattr.__self__``) matches only if that dotted name itself is listed -- none is.

Every group below was built by listing the globals in real files written by torch 2.13.0 (CPU),
numpy 2.4, scikit-learn 1.9, joblib 1.6, transformers 5.24 and accelerate 1.15 under Python
3.11, with the generator in tests/scan/pickle_samples.py (``generate_real_samples``; the file
names below are its outputs), plus the closely related names noted at each group (the same
functions and classes spelled by older releases, the other members of a family seen in part).
The lists are data: they never depend on what is installed next to the scanner.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

Pair = tuple[str, str]


class LoadContext(StrEnum):
    """Which loader will unpickle the bytes; each has its own allowlist."""

    TORCH = "torch"  # torch.load of data.pkl / legacy torch pickles, incl. full-module parts
    JOBLIB = "joblib"  # sklearn / joblib models
    NUMPY = "numpy"  # numpy object arrays (.npy with allow_pickle)
    GENERIC = "generic"  # metadata pickles (training_args.bin, rng_state.pth, optimizer.pt ...)


class Use(StrEnum):
    """How a pickle may use an allowed global."""

    CALL = "call"
    CONSTRUCT = "construct"
    REFERENCE = "reference"


def _names(module: str, names: Iterable[str]) -> frozenset[Pair]:
    return frozenset((module, name) for name in names)


# --------------------------------------------------------------------------------------------
# Plain Python data, in every context. Seen in pickle.dumps of dicts, lists, OrderedDict,
# Counter, defaultdict, datetime, Decimal, sets, bytes, bytearray, complex and argparse.Namespace
# at protocols 0-5 (tests/scan/pickle_samples.py benign_stdlib) and in namespace_args.bin,
# trainer_state_like.pt and the torch state dicts (OrderedDict). Closely related: the other
# built-in data types, which are the base classes copyreg._reconstructor calls for subclasses
# of them at protocols 0-1.

_BUILTIN_TYPES: Final = [
    "set", "frozenset", "bytearray", "complex", "bytes", "object", "list", "dict", "tuple",
    "int", "float", "str", "bool",
]  # fmt: skip
_STDLIB_CALLABLE: Final = (
    frozenset(
        {
            ("_codecs", "encode"),  # bytes at protocols 0-2: _codecs.encode(text, "latin1")
            ("copyreg", "_reconstructor"),  # objects at protocols 0-1
        }
    )
    | _names("collections", ["OrderedDict", "Counter", "defaultdict"])
    | _names("datetime", ["datetime", "date", "time", "timedelta", "timezone"])
    | _names("decimal", ["Decimal"])
    | _names("builtins", _BUILTIN_TYPES)
)
_STDLIB_CONSTRUCTIBLE: Final = frozenset({("argparse", "Namespace")})

# --------------------------------------------------------------------------------------------
# Tensors (torch.save of state dicts, optimizer and scheduler states, rng_state.pth): seen in
# state_dict_*.pt, tensors_misc.pt, legacy_*.pt, optimizer_*.pt, rng_state.pth. Closely
# related: the rest of torch's _rebuild_* family (the functions torch.load's weights_only
# unpickler accepts), every dtype, every storage class (CPU and CUDA: legacy files of CUDA
# tensors name torch.cuda.*Storage), every quantization scheme.

_TORCH_CALLABLE: Final = _names(
    "torch._utils",
    [
        "_rebuild_tensor",
        "_rebuild_tensor_v2",  # every dense tensor
        "_rebuild_tensor_v3",  # uint16/uint32/uint64 (tensors_misc / state_dict_dtypes)
        "_rebuild_parameter",  # nn.Parameter
        "_rebuild_parameter_with_state",
        "_rebuild_qtensor",  # quantize_per_tensor / per_channel
        "_rebuild_sparse_tensor",  # to_sparse(), to_sparse_csr()
        "_rebuild_meta_tensor_no_storage",
        "_rebuild_nested_tensor",
        "_rebuild_wrapper_subclass",
        "_rebuild_device_tensor_from_cpu_tensor",
        "_rebuild_device_tensor_from_numpy",
    ],
) | {
    ("torch._tensor", "_rebuild_from_type_v2"),  # Parameter(requires_grad=False) and subclasses
    ("torch.serialization", "_get_layout"),  # sparse layouts
    ("torch", "Size"),
    ("torch", "device"),
}
_TORCH_CONSTRUCTIBLE: Final = frozenset(
    {
        ("torch", "Tensor"),  # the type argument of _rebuild_from_type_v2
        ("torch.nn.parameter", "Parameter"),
    }
)
_TORCH_DTYPES: Final = _names(
    "torch",
    [
        "float32", "float64", "float16", "bfloat16", "complex32", "complex64", "complex128",
        "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
        "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
        "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
        "float4_e2m1fn_x2", "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
        "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
        "int1", "int2", "int3", "int4", "int5", "int6", "int7",
        "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
        "per_channel_symmetric", "per_channel_affine_float_qparams",
    ],
)  # fmt: skip
_STORAGE_NAMES: Final = [
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
    "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
    "ComplexFloatStorage", "ComplexDoubleStorage",
]  # fmt: skip
_TORCH_STORAGES: Final = (
    _names("torch", [*_STORAGE_NAMES, "QInt8Storage", "QUInt8Storage", "QInt32Storage",
                     "QUInt4x2Storage", "QUInt2x4Storage"])
    | _names("torch.cuda", _STORAGE_NAMES)
    | _names("torch.storage", ["UntypedStorage", "TypedStorage"])  # float8 / uint16+ tensors
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# Full-module pickles (torch.save(model)): seen in full_module_torch_only.pt (an nn.Sequential
# of one instance of each layer class below), full_module_user_class.pt,
# legacy_full_module_*.pt and full_module_bert.pt. The classes are constructed with NEWOBJ and
# their __dict__ is set with BUILD. User classes (__main__.MyNet, transformers.*) are not here:
# they are reported and left to the policy.

_NN_MODULES: Final[dict[str, list[str]]] = {
    "activation": [
        "CELU", "ELU", "GELU", "GLU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh",
        "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "MultiheadAttention", "PReLU", "RReLU",
        "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid", "Softmax", "Softmax2d", "Softmin",
        "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold",
    ],
    "batchnorm": ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"],
    "channelshuffle": ["ChannelShuffle"],
    "container": ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential"],
    "conv": ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
             "ConvTranspose3d"],
    "distance": ["CosineSimilarity", "PairwiseDistance"],
    "dropout": ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d"],
    "flatten": ["Flatten", "Unflatten"],
    "fold": ["Fold", "Unfold"],
    "instancenorm": ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"],
    "linear": ["Bilinear", "Identity", "Linear", "NonDynamicallyQuantizableLinear"],
    "loss": [
        "BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss",
        "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss", "MarginRankingLoss", "NLLLoss",
        "SmoothL1Loss", "TripletMarginLoss",
    ],
    "normalization": ["GroupNorm", "LayerNorm", "LocalResponseNorm", "RMSNorm"],
    "padding": [
        "CircularPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
        "ReplicationPad1d", "ReplicationPad2d", "ZeroPad1d", "ZeroPad2d",
    ],
    "pixelshuffle": ["PixelShuffle", "PixelUnshuffle"],
    "pooling": [
        "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
        "FractionalMaxPool2d", "LPPool1d", "LPPool2d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
        "MaxUnpool2d",
    ],
    "rnn": ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"],
    "sparse": ["Embedding", "EmbeddingBag"],
    "transformer": ["Transformer", "TransformerDecoder", "TransformerDecoderLayer",
                    "TransformerEncoder", "TransformerEncoderLayer"],
    "upsampling": ["Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"],
}  # fmt: skip
_TORCH_NN_CONSTRUCTIBLE: Final = frozenset(
    (f"torch.nn.modules.{module}", name) for module, names in _NN_MODULES.items() for name in names
)
# TransformerEncoderLayer / TransformerDecoderLayer keep their activation function as an
# attribute (relu by default, gelu when asked): stored, never called while loading.
_TORCH_NN_REFERENCED: Final = frozenset(
    {("torch.nn.functional", "relu"), ("torch.nn.functional", "gelu"), ("torch._C._nn", "gelu")}
)

# --------------------------------------------------------------------------------------------
# numpy arrays, scalars and random state: seen in rng_state.pth (np.random.get_state()),
# trainer_state_like.pt (numpy scalars and an array), every .joblib file, and the object
# arrays *.npy. Closely related: the same functions under numpy 1.x's module names
# (numpy.core.*), the Generator/PCG64 pickling helpers beside the RandomState/MT19937 ones, the
# common scalar types beside numpy.float64 (an estimator's dtype parameter).

_NUMPY_CALLABLE: Final = (
    _names("numpy._core.multiarray", ["_reconstruct", "scalar"])
    | _names("numpy.core.multiarray", ["_reconstruct", "scalar"])
    | _names("numpy._core.numeric", ["_frombuffer"])  # protocol 5 arrays
    | _names("numpy.core.numeric", ["_frombuffer"])
    | _names("numpy.random._pickle",
             ["__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"])
    | _names("numpy", ["dtype"])
    | _names("numpy.random._mt19937", ["MT19937"])  # called by __bit_generator_ctor
    | _names("numpy.random._pcg64", ["PCG64"])
)  # fmt: skip
_NUMPY_CONSTRUCTIBLE: Final = frozenset({("numpy", "ndarray")})  # _reconstruct's subtype
_NUMPY_REFERENCED: Final = _names("numpy", ["float64", "float32", "int64", "int32"])

# --------------------------------------------------------------------------------------------
# joblib.dump of scikit-learn estimators: seen in logistic_regression, random_forest,
# pipeline_scaler_logreg (uncompressed and zlib/gzip/lzma/bz2), linear_regression, ridge,
# decision_tree_regressor, svc, kmeans, gradient_boosting, mlp, pca, gaussian_nb, knn, tfidf,
# onehot_strings, label_encoder and plain_arrays (.joblib). Cython helpers (newObj, Tree,
# CyHalfBinomialLoss, KDTree, EuclideanDistance64) are reduced by their own __reduce__.

_JOBLIB_CONSTRUCTIBLE: Final = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn._loss.link", "Interval"),
        ("sklearn._loss.link", "LogitLink"),
        ("sklearn._loss.loss", "HalfBinomialLoss"),
        ("sklearn.cluster._kmeans", "KMeans"),
        ("sklearn.decomposition._pca", "PCA"),
        ("sklearn.dummy", "DummyClassifier"),
        ("sklearn.ensemble._forest", "RandomForestClassifier"),
        ("sklearn.ensemble._gb", "GradientBoostingClassifier"),
        ("sklearn.feature_extraction.text", "TfidfTransformer"),
        ("sklearn.feature_extraction.text", "TfidfVectorizer"),
        ("sklearn.linear_model._base", "LinearRegression"),
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("sklearn.linear_model._ridge", "Ridge"),
        ("sklearn.metrics._dist_metrics", "EuclideanDistance64"),
        ("sklearn.naive_bayes", "GaussianNB"),
        ("sklearn.neighbors._classification", "KNeighborsClassifier"),
        ("sklearn.neighbors._kd_tree", "KDTree"),
        ("sklearn.neural_network._multilayer_perceptron", "MLPClassifier"),
        ("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer"),
        ("sklearn.pipeline", "Pipeline"),
        ("sklearn.preprocessing._data", "StandardScaler"),
        ("sklearn.preprocessing._encoders", "OneHotEncoder"),
        ("sklearn.preprocessing._label", "LabelBinarizer"),
        ("sklearn.preprocessing._label", "LabelEncoder"),
        ("sklearn.svm._classes", "SVC"),
        ("sklearn.tree._classes", "DecisionTreeClassifier"),
        ("sklearn.tree._classes", "DecisionTreeRegressor"),
    }
)
_JOBLIB_CALLABLE: Final = frozenset(
    {
        ("sklearn.metrics._dist_metrics", "newObj"),  # newObj(cls) -> cls.__new__(cls)
        ("sklearn.neighbors._kd_tree", "newObj"),
        ("sklearn.tree._tree", "Tree"),  # Tree(n_features, n_classes, n_outputs)
        ("sklearn._loss._loss", "CyHalfBinomialLoss"),
    }
)

# --------------------------------------------------------------------------------------------
# Hugging Face trainer metadata: seen in training_args.bin (TrainingArguments saved with
# torch.save, as Trainer does) and training_args_seq2seq.bin. Closely related: FSDPOption, the
# remaining enum type of TrainingArguments' fields.

_HF_TRAINER_CONSTRUCTIBLE: Final = frozenset(
    {
        ("transformers.training_args", "TrainingArguments"),
        ("transformers.training_args_seq2seq", "Seq2SeqTrainingArguments"),
        ("transformers.trainer_pt_utils", "AcceleratorConfig"),
        ("accelerate.state", "PartialState"),
    }
)
_HF_TRAINER_CALLABLE: Final = frozenset(  # enum members: EnumClass(value)
    {
        ("transformers.training_args", "OptimizerNames"),
        ("transformers.trainer_utils", "HubStrategy"),
        ("transformers.trainer_utils", "IntervalStrategy"),
        ("transformers.trainer_utils", "SaveStrategy"),
        ("transformers.trainer_utils", "SchedulerType"),
        ("transformers.trainer_utils", "FSDPOption"),
        ("transformers.debug_utils", "DebugOption"),
        ("accelerate.utils.dataclasses", "DistributedType"),
    }
)

# --------------------------------------------------------------------------------------------
# The lists per context.


def _freeze(table: Mapping[LoadContext, frozenset[Pair]]) -> Mapping[LoadContext, frozenset[Pair]]:
    return MappingProxyType(dict(table))


CALLABLE: Final[Mapping[LoadContext, frozenset[Pair]]] = _freeze(
    {
        LoadContext.TORCH: _STDLIB_CALLABLE | _TORCH_CALLABLE,
        LoadContext.GENERIC: _STDLIB_CALLABLE
        | _TORCH_CALLABLE
        | _NUMPY_CALLABLE
        | _HF_TRAINER_CALLABLE,
        LoadContext.JOBLIB: _STDLIB_CALLABLE | _NUMPY_CALLABLE | _JOBLIB_CALLABLE,
        LoadContext.NUMPY: _STDLIB_CALLABLE | _NUMPY_CALLABLE,
    }
)
CONSTRUCTIBLE: Final[Mapping[LoadContext, frozenset[Pair]]] = _freeze(
    {
        LoadContext.TORCH: _STDLIB_CONSTRUCTIBLE | _TORCH_CONSTRUCTIBLE | _TORCH_NN_CONSTRUCTIBLE,
        LoadContext.GENERIC: _STDLIB_CONSTRUCTIBLE
        | _TORCH_CONSTRUCTIBLE
        | _NUMPY_CONSTRUCTIBLE
        | _HF_TRAINER_CONSTRUCTIBLE,
        LoadContext.JOBLIB: _STDLIB_CONSTRUCTIBLE | _NUMPY_CONSTRUCTIBLE | _JOBLIB_CONSTRUCTIBLE,
        LoadContext.NUMPY: _STDLIB_CONSTRUCTIBLE | _NUMPY_CONSTRUCTIBLE,
    }
)
REFERENCED: Final[Mapping[LoadContext, frozenset[Pair]]] = _freeze(
    {
        LoadContext.TORCH: _TORCH_DTYPES | _TORCH_STORAGES | _TORCH_NN_REFERENCED,
        LoadContext.GENERIC: _TORCH_DTYPES | _TORCH_STORAGES | _NUMPY_REFERENCED,
        LoadContext.JOBLIB: _NUMPY_REFERENCED,
        LoadContext.NUMPY: _NUMPY_REFERENCED,
    }
)

# Allowed functions that call or instantiate one of their arguments: that argument must itself
# be allowed for that use (a function passed where a class is constructed is a misuse).
ARGUMENT_ROLES: Final[Mapping[Pair, Mapping[int, Use]]] = MappingProxyType(
    {
        # _reconstructor(cls, base, state): base.__new__(cls), then base.__init__(obj, state)
        ("copyreg", "_reconstructor"): {0: Use.CONSTRUCT, 1: Use.CALL},
        ("numpy._core.multiarray", "_reconstruct"): {0: Use.CONSTRUCT},
        ("numpy.core.multiarray", "_reconstruct"): {0: Use.CONSTRUCT},
        ("numpy.random._pickle", "__bit_generator_ctor"): {0: Use.CALL},
        ("numpy.random._pickle", "__randomstate_ctor"): {1: Use.CALL},
        ("numpy.random._pickle", "__generator_ctor"): {1: Use.CALL},
        ("sklearn.metrics._dist_metrics", "newObj"): {0: Use.CONSTRUCT},
        ("sklearn.neighbors._kd_tree", "newObj"): {0: Use.CONSTRUCT},
        ("torch._tensor", "_rebuild_from_type_v2"): {0: Use.CALL, 1: Use.CONSTRUCT},
        ("torch._utils", "_rebuild_wrapper_subclass"): {0: Use.CONSTRUCT},
        ("collections", "defaultdict"): {0: Use.CALL},  # the default factory
    }
)


# --------------------------------------------------------------------------------------------
# Lookups.


def canonical(module: str, qualname: str) -> Pair:
    """The Python 3 name of a pickled global, as the unpickler maps protocol 0-2 names
    (``__builtin__`` -> ``builtins``, ``copy_reg`` -> ``copyreg``, ``commands`` ->
    ``subprocess``, ``exceptions.X`` -> ``builtins.X`` ...)."""
    pair = (module, qualname)
    if pair in _compat_pickle.NAME_MAPPING:
        mapped: Pair = _compat_pickle.NAME_MAPPING[pair]
        return mapped
    return _compat_pickle.IMPORT_MAPPING.get(module, module), qualname


def uses(module: str, qualname: str, context: LoadContext) -> frozenset[Use]:
    """How a pickle in ``context`` may use the global (REFERENCE for any allowed one); empty
    when it is not allowed. The names are matched exactly as given (apply ``canonical`` first
    where the protocol calls for it)."""
    pair = (module, qualname)
    found: set[Use] = set()
    if pair in CALLABLE[context]:
        found.add(Use.CALL)
    if pair in CONSTRUCTIBLE[context]:
        found.add(Use.CONSTRUCT)
    if found or pair in REFERENCED[context]:
        found.add(Use.REFERENCE)
    return frozenset(found)


def is_allowed(module: str, qualname: str, context: LoadContext) -> bool:
    """Whether the global may appear at all in a pickle of this context: mapped by
    ``canonical``, matched exactly, never by prefix."""
    return bool(uses(*canonical(module, qualname), context))


# --------------------------------------------------------------------------------------------
# Known-dangerous callables: only for clearer messages. Blocking never depends on this list
# (anything not allowed above is blocked); it names what a gadget does.

_SHELL = "runs programs or shell commands"
_CODE = "evaluates, compiles or profiles Python code"
_IMPORT = "imports modules or resolves names at load time"
_LOADER = "loads a second-stage serialized payload"
_FILES = "opens, creates or changes files"
_NET = "opens network connections"
_ATTR = "reaches arbitrary attributes (introspection gadget)"
_FUNC = "builds functions or code objects"
_WRAP = "wraps a callable to be called later"
_NATIVE = "calls native code"
_STATE = "changes interpreter or process state"
_DECODE = "decodes data for a second stage"
_REMOTE = "downloads and loads another repository"

_DANGEROUS_MODULES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "os": _SHELL, "posix": _SHELL, "nt": _SHELL, "subprocess": _SHELL,
        "_posixsubprocess": _SHELL, "pty": _SHELL, "webbrowser": _SHELL, "pip": _SHELL,
        "ensurepip": _SHELL, "venv": _SHELL, "asyncio": _SHELL, "multiprocessing": _SHELL,
        "_osx_support": _SHELL, "_pyrepl": _SHELL, "torch.utils.collect_env": _SHELL,
        "distutils": _SHELL, "setuptools": _SHELL, "mlflow": _SHELL,
        "runpy": _CODE, "code": _CODE, "codeop": _CODE, "timeit": _CODE, "cProfile": _CODE,
        "profile": _CODE, "pdb": _CODE, "bdb": _CODE, "trace": _CODE, "doctest": _CODE,
        "torch._dynamo": _CODE, "torch.fx": _CODE, "bottleneck": _CODE,
        "importlib": _IMPORT, "pkgutil": _IMPORT, "zipimport": _IMPORT,
        "pickle": _LOADER, "_pickle": _LOADER, "marshal": _LOADER, "shelve": _LOADER,
        "dill": _LOADER, "cloudpickle": _LOADER, "joblib.numpy_pickle_compat": _LOADER,
        "torch.hub": _REMOTE, "torch.package": _LOADER, "torch.jit": _LOADER,
        "shutil": _FILES, "tempfile": _FILES, "tarfile": _FILES, "zipfile": _FILES,
        "pathlib": _FILES, "fileinput": _FILES, "glob": _FILES, "linecache": _FILES,
        "socket": _NET, "_socket": _NET, "http": _NET, "urllib": _NET, "ftplib": _NET,
        "smtplib": _NET, "telnetlib": _NET, "xmlrpc": _NET, "requests": _NET, "httpx": _NET,
        "ctypes": _NATIVE, "_ctypes": _NATIVE, "cffi": _NATIVE,
        "sys": _STATE, "signal": _STATE, "atexit": _STATE, "threading": _STATE,
        "_thread": _STATE, "gc": _STATE, "site": _STATE,
        "base64": _DECODE, "binascii": _DECODE, "zlib": _DECODE,
    }
)  # fmt: skip
_DANGEROUS_NAMES: Final[Mapping[Pair, str]] = MappingProxyType(
    {
        ("builtins", "eval"): _CODE,
        ("builtins", "exec"): _CODE,
        ("builtins", "compile"): _CODE,
        ("builtins", "breakpoint"): _CODE,
        ("builtins", "help"): _SHELL,
        ("builtins", "open"): _FILES,
        ("builtins", "input"): _STATE,
        ("builtins", "__import__"): _IMPORT,
        ("builtins", "getattr"): _ATTR,
        ("builtins", "setattr"): _ATTR,
        ("builtins", "delattr"): _ATTR,
        ("builtins", "globals"): _ATTR,
        ("builtins", "locals"): _ATTR,
        ("builtins", "vars"): _ATTR,
        ("builtins", "type"): _FUNC,
        ("operator", "attrgetter"): _ATTR,
        ("operator", "methodcaller"): _ATTR,
        ("functools", "partial"): _WRAP,
        ("functools", "partialmethod"): _WRAP,
        ("functools", "reduce"): _WRAP,
        ("types", "FunctionType"): _FUNC,
        ("types", "LambdaType"): _FUNC,
        ("types", "CodeType"): _FUNC,
        ("types", "MethodType"): _FUNC,
        ("types", "ModuleType"): _FUNC,
        ("uuid", "_get_command_stdout"): _SHELL,
        ("imaplib", "IMAP4_stream"): _SHELL,
        ("pydoc", "pipepager"): _SHELL,
        ("pydoc", "pager"): _SHELL,
        ("pydoc", "tempfilepager"): _SHELL,
        ("platform", "_syscmd_file"): _SHELL,
        ("platform", "_syscmd_ver"): _SHELL,
        ("logging", "FileHandler"): _FILES,
        ("logging.handlers", "RotatingFileHandler"): _FILES,
        ("logging.handlers", "TimedRotatingFileHandler"): _FILES,
        ("logging.handlers", "WatchedFileHandler"): _FILES,
        ("logging.handlers", "SocketHandler"): _NET,
        ("logging.config", "listen"): _CODE,
        ("logging.config", "fileConfig"): _CODE,
        ("logging.config", "dictConfig"): _CODE,
        ("io", "open"): _FILES,
        ("io", "open_code"): _FILES,
        ("io", "FileIO"): _FILES,
        ("_io", "open"): _FILES,
        ("_io", "FileIO"): _FILES,
        ("bz2", "open"): _FILES,
        ("bz2", "BZ2File"): _FILES,
        ("gzip", "open"): _FILES,
        ("gzip", "GzipFile"): _FILES,
        ("lzma", "open"): _FILES,
        ("lzma", "LZMAFile"): _FILES,
        ("sqlite3", "connect"): _FILES,
        ("dbm", "open"): _FILES,
        ("codecs", "open"): _FILES,
        ("codecs", "decode"): _DECODE,
        ("numpy", "load"): _LOADER,
        ("numpy", "loads"): _LOADER,
        ("numpy", "fromfile"): _FILES,
        ("numpy", "save"): _FILES,
        ("numpy", "savez"): _FILES,
        ("numpy", "savetxt"): _FILES,
        ("numpy", "memmap"): _FILES,
        ("numpy", "loadtxt"): _FILES,
        ("numpy", "genfromtxt"): _FILES,
        ("numpy.lib.npyio", "load"): _LOADER,
        ("torch", "load"): _LOADER,
        ("torch", "save"): _FILES,
        ("torch.serialization", "load"): _LOADER,
        ("torch.serialization", "save"): _FILES,
        ("joblib", "load"): _LOADER,
        ("joblib", "dump"): _FILES,
        ("joblib.numpy_pickle", "load"): _LOADER,
        ("pandas", "read_csv"): _FILES,
        ("pandas", "read_pickle"): _LOADER,
        ("pandas.io.pickle", "read_pickle"): _LOADER,
        ("yaml", "load"): _LOADER,
        ("yaml", "unsafe_load"): _LOADER,
        ("yaml", "full_load"): _LOADER,
        ("multiprocessing.util", "spawnv_passfds"): _SHELL,
    }
)


def dangerous_reason(module: str, qualname: str) -> str | None:
    """What a known gadget does, for the message; None when it is not a known one. The walk
    through a dotted qualname is followed (``torch._utils`` + ``os.system`` reaches os)."""
    reason = _DANGEROUS_NAMES.get((module, qualname))
    if reason is not None:
        return reason
    parts = qualname.split(".")
    reason = _DANGEROUS_NAMES.get((module, parts[0]))
    if reason is not None:
        return reason
    for end in range(len(module), 0, -1):
        if end == len(module) or module[end] == ".":
            reason = _DANGEROUS_MODULES.get(module[:end])
            if reason is not None:
                return reason
    if parts[-1] == "from_pretrained":
        return _REMOTE
    if len(parts) > 1:
        if any(part.startswith("__") and part.endswith("__") for part in parts):
            return _ATTR
        inner = dangerous_reason(parts[0], ".".join(parts[1:]))
        if inner is not None:
            return f"{inner} (reached through an attribute walk)"
    return None
