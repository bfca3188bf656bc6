"""Op allowlist of a TensorFlow SavedModel: which kernels its graphs can run.

`saved_model.pb` is one protobuf SavedModel: meta graphs, each with a GraphDef (nodes, plus a
library of functions whose bodies are nodes again) and the metadata that says which nodes the
loader runs (the saver's restore op, init ops, signatures, the TF2 object graph). Every node
names an op, a kernel compiled into TensorFlow; the graph cannot run anything else, but several
kernels reach the file system, the network or the Python interpreter (threats.md 2 and 4.8:
modelscan flags ReadFile/WriteFile HIGH; PyFunc runs a registered Python callback).

This module walks the protobuf by hand with proxy.scan.protobuf (streaming, bounded, tensor bytes
skipped) and checks every op of every node of the main graph and of every function, plus every
function or op named in an attribute (`f`, `then_branch`, `body`, `branches`... may name a
primitive op as well as a function). Ops are default-deny: only ALLOWED_OPS (built from a census
of real SavedModels, see below) and functions of the same library pass. It reports:

- `savedmodel-dangerous-op` (critical): an op that touches files, the network, other processes or
  Python (ReadFile, WriteFile, PyFunc, EagerPyFunc, MatchingFiles, file datasets, readers,
  summary writers, debug ops, ImmutableConst, ...), with the reason.
- `savedmodel-print-to-file` (critical): PrintV2 whose output_stream is not stderr, stdout or
  the log (a `file://` stream appends to any file).
- `savedmodel-saver-op` (critical): checkpoint ops (SaveV2, RestoreV2, MergeV2Checkpoints and the
  TF1 Save/Restore family) outside the saver. Every SavedModel carries them: TF2 in the
  `__inference__traced_save/restore` functions called by the nodes its SaverDef names, TF1 in
  the saver's name scope (`save/`). They run only when TF's own checkpoint code saves or restores
  the model, so they are allowed there, and only there: not in a function the model can reach
  (its signatures, the object graph, gradients, anything nobody calls), not when a model node,
  signature or collection uses a saver node, and writers not on the restore side (which the
  loader runs).
- `savedmodel-unknown-op` (high): an op that is neither allowed nor a function of the library
  (custom-op libraries, rare kernels): block by default.
- `savedmodel-malformed` (high): truncated or invalid protobuf, wrong wire types, no meta graph or
  no graph, a file of 2 GiB or more (protobuf's limit), counts or nesting past the caps. Parsing
  stops there (fail closed) and the findings made before are kept.

`check_named` covers the files of a SavedModel directory known by name: `keras_metadata.pb` (a
tf.keras SavedModel's layer configs as JSON; proxy.scan.keras checks each, since tf.keras
rebuilds the layers from them and a Lambda's bytecode runs, CVE-2024-3660), and
`savedmodel-not-scanned` (high) for `saved_model.pbtxt` and `saved_model.cpb`, SavedModel forms
TensorFlow loads but this module cannot read.

Not covered here: frozen TF1 GraphDefs (`*.pb` holding a bare GraphDef, run through
import_graph_def) are not sniffed as SavedModels; a `saved_model.pb` that does not sniff as one
(no schema version) is blocked by the engine's name check, not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from proxy.scan import keras
from proxy.scan.protobuf import LEN, Malformed, Source, expect_message
from proxy.scan.report import Finding, Severity

MAX_FILE_BYTES = (2 << 30) - 1  # protobuf (and so TensorFlow) refuses larger messages
MAX_META_GRAPHS = 1_000
MAX_NODES = 5_000_000  # nodes in every graph and function of the file
MAX_NAMES = 2_000_000  # names remembered for one meta graph (functions, calls, saver nodes)
MAX_ATTR_DEPTH = 32  # function attributes nested in function attributes
MAX_STRING_BYTES = 64 << 10  # a name this walker reads
MAX_KERAS_METADATA_BYTES = 64 << 20  # one Keras config in keras_metadata.pb

KERAS_METADATA_NAME = "keras_metadata.pb"
UNREADABLE_SAVED_MODELS = {
    "saved_model.pbtxt": "a text-format SavedModel (read when there is no saved_model.pb)",
    "saved_model.cpb": "a chunked SavedModel (TensorFlow's proto splitter, past 2 GiB)",
}

# Field numbers, from TensorFlow 2.21's descriptors (tensorflow/core/protobuf/saved_model.proto,
# meta_graph.proto, saver.proto, saved_object_graph.proto; tensorflow/core/framework/graph.proto,
# node_def.proto, function.proto, attr_value.proto, op_def.proto).
SAVED_MODEL_META_GRAPHS = 2
META_INFO_DEF, META_GRAPH_DEF, META_SAVER_DEF = 1, 2, 3
META_COLLECTION_DEF, META_SIGNATURE_DEF, META_OBJECT_GRAPH_DEF = 4, 5, 7
INFO_FUNCTION_ALIASES = 8  # MetaInfoDef: map<string, string> alias -> function name
GRAPH_NODE, GRAPH_LIBRARY = 1, 2
NODE_NAME, NODE_OP, NODE_INPUT, NODE_ATTR = 1, 2, 3, 5
LIBRARY_FUNCTION, LIBRARY_GRADIENT, LIBRARY_REGISTERED_GRADIENT = 1, 2, 3
GRADIENT_FUNC = 2  # GradientDef.gradient_func
REGISTERED_GRADIENT_FUNC = 1  # RegisteredGradient.gradient_func
FUNCTION_SIGNATURE, FUNCTION_NODE_DEF = 1, 3
OP_DEF_NAME = 1
ATTR_LIST, ATTR_S, ATTR_PLACEHOLDER, ATTR_FUNC = 1, 2, 9, 10
LIST_FUNC = 9
NAME_ATTR_LIST_NAME, NAME_ATTR_LIST_ATTR = 1, 2
SAVER_SAVE_TENSOR, SAVER_RESTORE_OP = 2, 3
COLLECTION_NODE_LIST = 1
NODE_LIST_VALUE = 1
SIGNATURE_INPUTS, SIGNATURE_OUTPUTS = 1, 2
TENSOR_INFO_NAME, TENSOR_INFO_COO_SPARSE, TENSOR_INFO_COMPOSITE = 1, 4, 5
COO_SPARSE_NAMES = (1, 2, 3)  # values, indices, dense_shape tensor names
COMPOSITE_COMPONENTS = 2
OBJECT_GRAPH_CONCRETE_FUNCTIONS = 2  # SavedObjectGraph: map<string, SavedConcreteFunction>
MAP_KEY, MAP_VALUE = 1, 2
KERAS_NODES, KERAS_NODE_PATH, KERAS_METADATA = 1, 3, 5  # SavedMetadata / its SavedObject


# The allowlist. Built from a census of the ops in real SavedModels written by TensorFlow 2.21
# and Keras 3.15 (tf.Module with variables, tf.function with while_loop/cond/case/TensorArray,
# string processing with lookup tables, Keras Dense/Conv/attention/LSTM/GRU/SimpleRNN/
# StringLookup/TextVectorization models through model.export() and tf.saved_model.save, a TF1
# SavedModelBuilder graph, random and linear-algebra ops: tests/scan/real_producers.py writes
# them), widened to the standard kernels of the same families. Nothing here reads or writes a
# file, opens a connection or calls back into Python; every name is a registered TensorFlow op
# (checked by tests/scan/test_savedmodel.py against TensorFlow's registry).
_ALLOWED_BY_FAMILY = {
    "graph plumbing, function calls and control flow (v1 and v2); PrintV2 is also checked": """
        Assert Case CheckNumerics CheckNumericsV2 Const ControlTrigger DeviceIndex Empty EnsureShape
        Enter Exit FakeParam For GuaranteeConst Identity IdentityN If LoopCond Merge NextIteration
        NoOp OptionalFromValue OptionalGetValue OptionalHasValue OptionalNone PartitionedCall
        Placeholder PlaceholderV2 PlaceholderWithDefault PreventGradient Print PrintV2 RefEnter
        RefExit RefIdentity RefMerge RefNextIteration RefSelect RefSwitch Snapshot
        StatefulPartitionedCall StatelessCase StatelessIf StatelessWhile StopGradient Switch
        Timestamp While
    """,
    "resource and legacy (ref) variables": """
        Assign AssignAdd AssignAddVariableOp AssignSub AssignSubVariableOp AssignVariableOp
        CountUpTo DestroyResourceOp DestroyTemporaryVariable DisableCopyOnRead IsVariableInitialized
        ReadVariableOp ResourceCountUpTo ResourceGather ResourceGatherNd ResourceScatterAdd
        ResourceScatterDiv ResourceScatterMax ResourceScatterMin ResourceScatterMul
        ResourceScatterNdAdd ResourceScatterNdMax ResourceScatterNdMin ResourceScatterNdSub
        ResourceScatterNdUpdate ResourceScatterSub ResourceScatterUpdate ResourceStridedSliceAssign
        ScatterAdd ScatterDiv ScatterMax ScatterMin ScatterMul ScatterNdAdd ScatterNdMax
        ScatterNdMin ScatterNdSub ScatterNdUpdate ScatterSub ScatterUpdate StridedSliceAssign
        TemporaryVariable VarHandleOp VarIsInitializedOp Variable VariableShape VariableV2
    """,
    "in-memory lookup tables (vocabularies given as tensors)": """
        AnonymousHashTable AnonymousMutableDenseHashTable AnonymousMutableHashTable
        AnonymousMutableHashTableOfTensors HashTable HashTableV2 InitializeTable InitializeTableV2
        LookupTableExport LookupTableExportV2 LookupTableFind LookupTableFindV2 LookupTableImport
        LookupTableImportV2 LookupTableInsert LookupTableInsertV2 LookupTableRemoveV2
        LookupTableSize LookupTableSizeV2 MutableDenseHashTable MutableDenseHashTableV2
        MutableHashTable MutableHashTableOfTensors MutableHashTableOfTensorsV2 MutableHashTableV2
    """,
    "TensorList (TF2 while loops, RNNs, TensorArray)": """
        EmptyTensorList TensorListConcat TensorListConcatLists TensorListConcatV2
        TensorListElementShape TensorListFromTensor TensorListGather TensorListGetItem
        TensorListLength TensorListPopBack TensorListPushBack TensorListPushBackBatch
        TensorListReserve TensorListResize TensorListScatter TensorListScatterIntoExistingList
        TensorListScatterV2 TensorListSetItem TensorListSplit TensorListStack
    """,
    "TensorArray (TF1 control flow)": """
        TensorArray TensorArrayClose TensorArrayCloseV2 TensorArrayCloseV3 TensorArrayConcat
        TensorArrayConcatV2 TensorArrayConcatV3 TensorArrayGather TensorArrayGatherV2
        TensorArrayGatherV3 TensorArrayGrad TensorArrayGradV2 TensorArrayGradV3
        TensorArrayGradWithShape TensorArrayPack TensorArrayRead TensorArrayReadV2 TensorArrayReadV3
        TensorArrayScatter TensorArrayScatterV2 TensorArrayScatterV3 TensorArraySize
        TensorArraySizeV2 TensorArraySizeV3 TensorArraySplit TensorArraySplitV2 TensorArraySplitV3
        TensorArrayUnpack TensorArrayV2 TensorArrayV3 TensorArrayWrite TensorArrayWriteV2
        TensorArrayWriteV3
    """,
    "stacks (TF1 while-loop gradients)": """
        StackCloseV2 StackPopV2 StackPushV2 StackV2
    """,
    "random numbers": """
        Multinomial NonDeterministicInts ParameterizedTruncatedNormal RandomCrop RandomGamma
        RandomGammaGrad RandomPoisson RandomPoissonV2 RandomShuffle RandomStandardNormal
        RandomUniform RandomUniformInt RngReadAndSkip RngSkip StatefulRandomBinomial
        StatefulStandardNormal StatefulStandardNormalV2 StatefulTruncatedNormal StatefulUniform
        StatefulUniformFullInt StatefulUniformInt StatelessMultinomial
        StatelessParameterizedTruncatedNormal StatelessRandomBinomial StatelessRandomGammaV2
        StatelessRandomGammaV3 StatelessRandomGetAlg StatelessRandomGetKeyCounter
        StatelessRandomGetKeyCounterAlg StatelessRandomNormal StatelessRandomNormalV2
        StatelessRandomPoisson StatelessRandomUniform StatelessRandomUniformFullInt
        StatelessRandomUniformFullIntV2 StatelessRandomUniformInt StatelessRandomUniformIntV2
        StatelessRandomUniformV2 StatelessShuffle StatelessTruncatedNormal
        StatelessTruncatedNormalV2 TruncatedNormal
    """,
    "element-wise math, reductions, segments": """
        Abs AccumulateNV2 Acos Acosh Add AddN AddV2 All Angle Any ApproxTopK ApproximateEqual ArgMax
        ArgMin Asin Asinh Atan Atan2 Atanh BesselI0 BesselI0e BesselI1 BesselI1e BesselJ0 BesselJ1
        BesselK0 BesselK0e BesselK1 BesselK1e BesselY0 BesselY1 Betainc Bincount Bitcast BitwiseAnd
        BitwiseOr BitwiseXor Bucketize Cast Ceil ClipByValue Complex ComplexAbs Conj Cos Cosh Cross
        Cumprod Cumsum CumulativeLogsumexp Dawsn DenseBincount Digamma Div DivNoNan Equal Erf Erfc
        Erfinv EuclideanNorm Exp Expint Expm1 Floor FloorDiv FloorMod FresnelCos FresnelSin Greater
        GreaterEqual HistogramFixedWidth Igamma IgammaGradA Igammac Imag Inv InvGrad Invert IsFinite
        IsInf IsNan L2Loss LeftShift Less LessEqual Lgamma Log Log1p LogicalAnd LogicalNot LogicalOr
        LowerBound Max Maximum Mean Min Minimum Mod Mul MulNoNan Ndtri Neg NextAfter NotEqual
        Polygamma PopulationCount Pow Prod RaggedBincount Real RealDiv Reciprocal ReciprocalGrad
        RightShift Rint Round Rsqrt RsqrtGrad SegmentMax SegmentMaxV2 SegmentMean SegmentMin
        SegmentMinV2 SegmentProd SegmentProdV2 SegmentSum SegmentSumV2 Sigmoid SigmoidGrad Sign Sin
        Sinh SparseBincount SparseSegmentMean SparseSegmentMeanGrad SparseSegmentMeanGradV2
        SparseSegmentMeanWithNumSegments SparseSegmentSqrtN SparseSegmentSqrtNGrad
        SparseSegmentSqrtNGradV2 SparseSegmentSqrtNWithNumSegments SparseSegmentSum
        SparseSegmentSumGrad SparseSegmentSumGradV2 SparseSegmentSumWithNumSegments Spence Sqrt
        SqrtGrad Square SquaredDifference Sub Sum Tan Tanh TanhGrad TruncateDiv TruncateMod
        UnsortedSegmentMax UnsortedSegmentMin UnsortedSegmentProd UnsortedSegmentSum UpperBound
        Xdivy Xlog1py Xlogy Zeta
    """,
    "linear algebra and FFT": """
        BandedTriangularSolve BatchMatMul BatchMatMulV2 BatchMatMulV3 Cholesky CholeskyGrad Eig
        Einsum FFT FFT2D FFT3D FFTND IFFT IFFT2D IFFT3D IFFTND IRFFT IRFFT2D IRFFT3D IRFFTND
        LogMatrixDeterminant Lu MatMul MatrixDeterminant MatrixExponential MatrixInverse
        MatrixLogarithm MatrixSolve MatrixSolveLs MatrixSquareRoot MatrixTriangularSolve Qr RFFT
        RFFT2D RFFT3D RFFTND SelfAdjointEig SelfAdjointEigV2 SparseMatMul Svd TridiagonalMatMul
        TridiagonalSolve
    """,
    "neural-network layers, RNN cells, fake quantization": """
        AvgPool AvgPool3D AvgPool3DGrad AvgPoolGrad BatchNormWithGlobalNormalization BiasAdd
        BiasAddGrad BiasAddV1 BlockLSTM BlockLSTMGrad BlockLSTMGradV2 BlockLSTMV2
        CTCBeamSearchDecoder CTCGreedyDecoder CTCLoss CTCLossV2 Conv Conv2D Conv2DBackpropFilter
        Conv2DBackpropFilterV2 Conv2DBackpropInput Conv2DBackpropInputV2 Conv3D
        Conv3DBackpropFilterV2 Conv3DBackpropInputV2 CudnnRNN CudnnRNNBackprop CudnnRNNBackpropV2
        CudnnRNNBackpropV3 CudnnRNNCanonicalToParams CudnnRNNCanonicalToParamsV2 CudnnRNNParamsSize
        CudnnRNNParamsToCanonical CudnnRNNParamsToCanonicalV2 CudnnRNNV2 CudnnRNNV3
        DepthwiseConv2dNative DepthwiseConv2dNativeBackpropFilter DepthwiseConv2dNativeBackpropInput
        Dequantize Dilation2D Dilation2DBackpropFilter Dilation2DBackpropInput Elu EluGrad
        FakeQuantWithMinMaxArgs FakeQuantWithMinMaxArgsGradient FakeQuantWithMinMaxVars
        FakeQuantWithMinMaxVarsGradient FakeQuantWithMinMaxVarsPerChannel
        FakeQuantWithMinMaxVarsPerChannelGradient FractionalAvgPool FractionalMaxPool FusedBatchNorm
        FusedBatchNormGrad FusedBatchNormGradV2 FusedBatchNormGradV3 FusedBatchNormV2
        FusedBatchNormV3 GRUBlockCell GRUBlockCellGrad InTopK InTopKV2 LRN LRNGrad LSTMBlockCell
        LSTMBlockCellGrad LeakyRelu LeakyReluGrad LogSoftmax MaxPool MaxPool3D MaxPool3DGrad
        MaxPoolGrad MaxPoolGradGrad MaxPoolGradV2 MaxPoolGradWithArgmax MaxPoolV2 MaxPoolWithArgmax
        NthElement QuantizeAndDequantize QuantizeAndDequantizeV2 QuantizeAndDequantizeV3
        QuantizeAndDequantizeV4 QuantizeAndDequantizeV4Grad QuantizeV2 Relu Relu6 Relu6Grad ReluGrad
        Selu SeluGrad Softmax SoftmaxCrossEntropyWithLogits Softplus SoftplusGrad Softsign
        SoftsignGrad SparseSoftmaxCrossEntropyWithLogits TopK TopKV2
    """,
    "optimizer updates (a model saved with its training step)": """
        ApplyAdaMax ApplyAdadelta ApplyAdagrad ApplyAdagradDA ApplyAdagradV2 ApplyAdam ApplyAddSign
        ApplyCenteredRMSProp ApplyFtrl ApplyFtrlV2 ApplyGradientDescent ApplyMomentum ApplyPowerSign
        ApplyProximalAdagrad ApplyProximalGradientDescent ApplyRMSProp ResourceApplyAdaMax
        ResourceApplyAdadelta ResourceApplyAdagrad ResourceApplyAdagradDA ResourceApplyAdagradV2
        ResourceApplyAdam ResourceApplyAdamWithAmsgrad ResourceApplyAddSign
        ResourceApplyCenteredRMSProp ResourceApplyFtrl ResourceApplyFtrlV2
        ResourceApplyGradientDescent ResourceApplyKerasMomentum ResourceApplyMomentum
        ResourceApplyPowerSign ResourceApplyProximalAdagrad ResourceApplyProximalGradientDescent
        ResourceApplyRMSProp ResourceSparseApplyAdadelta ResourceSparseApplyAdagrad
        ResourceSparseApplyAdagradDA ResourceSparseApplyAdagradV2 ResourceSparseApplyCenteredRMSProp
        ResourceSparseApplyFtrl ResourceSparseApplyFtrlV2 ResourceSparseApplyKerasMomentum
        ResourceSparseApplyMomentum ResourceSparseApplyProximalAdagrad
        ResourceSparseApplyProximalGradientDescent ResourceSparseApplyRMSProp SparseApplyAdadelta
        SparseApplyAdagrad SparseApplyAdagradDA SparseApplyAdagradV2 SparseApplyCenteredRMSProp
        SparseApplyFtrl SparseApplyFtrlV2 SparseApplyMomentum SparseApplyProximalAdagrad
        SparseApplyProximalGradientDescent SparseApplyRMSProp
    """,
    "shapes, slicing, gathering, scattering": """
        BatchToSpace BatchToSpaceND BroadcastArgs BroadcastGradientArgs BroadcastTo Concat
        ConcatOffset ConcatV2 ConjugateTranspose DataFormatDimMap DataFormatVecPermute DeepCopy
        DepthToSpace Diag DiagPart DynamicPartition DynamicStitch EditDistance ExpandDims
        ExtractImagePatches ExtractVolumePatches Fill Gather GatherNd GatherV2 InplaceAdd InplaceSub
        InplaceUpdate InvertPermutation LinSpace ListDiff MatrixBandPart MatrixDiag MatrixDiagPart
        MatrixDiagPartV2 MatrixDiagPartV3 MatrixDiagV2 MatrixDiagV3 MatrixSetDiag MatrixSetDiagV2
        MatrixSetDiagV3 MirrorPad MirrorPadGrad OneHot OnesLike Pack Pad PadV2 ParallelConcat
        ParallelDynamicStitch Range Rank Reshape Reverse ReverseSequence ReverseV2 Roll ScatterNd
        ScatterNdNonAliasingAdd Select SelectV2 Shape ShapeN Size Slice SpaceToBatch SpaceToBatchND
        SpaceToDepth Split SplitV Squeeze StridedSlice StridedSliceGrad TensorScatterAdd
        TensorScatterMax TensorScatterMin TensorScatterSub TensorScatterUpdate
        TensorStridedSliceUpdate Tile Transpose Unique UniqueV2 UniqueWithCounts UniqueWithCountsV2
        Unpack UnravelIndex Where ZerosLike
    """,
    "strings, parsing, summaries as strings (no file is touched)": """
        AsString AudioSummary AudioSummaryV2 DecodeBase64 DecodeCSV DecodeCompressed
        DecodeJSONExample DecodePaddedRaw DecodeRaw EncodeBase64 Fingerprint HistogramSummary
        ImageSummary MergeSummary ParseExample ParseExampleV2 ParseSequenceExample
        ParseSequenceExampleV2 ParseSingleExample ParseSingleSequenceExample ParseTensor ReduceJoin
        RegexFullMatch RegexReplace ScalarSummary SerializeTensor ShardedFilename ShardedFilespec
        StaticRegexFullMatch StaticRegexReplace StringFormat StringJoin StringLength StringLower
        StringNGrams StringSplit StringSplitV2 StringStrip StringToHashBucket StringToHashBucketFast
        StringToHashBucketStrong StringToNumber StringUpper Substr TensorSummary TensorSummaryV2
        UnicodeDecode UnicodeDecodeWithOffsets UnicodeEncode UnicodeScript UnicodeTranscode
        UnsortedSegmentJoin
    """,
    "image and audio decoding and processing of tensors": """
        AdjustContrast AdjustContrastv2 AdjustHue AdjustSaturation AudioSpectrogram
        CombinedNonMaxSuppression CropAndResize CropAndResizeGradBoxes CropAndResizeGradImage
        DecodeAndCropJpeg DecodeBmp DecodeGif DecodeImage DecodeJpeg DecodePng DecodeWav
        DrawBoundingBoxes DrawBoundingBoxesV2 EncodeJpeg EncodeJpegVariableQuality EncodePng
        EncodeWav ExtractGlimpse ExtractGlimpseV2 ExtractJpegShape GenerateBoundingBoxProposals
        HSVToRGB ImageProjectiveTransformV2 ImageProjectiveTransformV3 Mfcc NonMaxSuppression
        NonMaxSuppressionV2 NonMaxSuppressionV3 NonMaxSuppressionV4 NonMaxSuppressionV5
        NonMaxSuppressionWithOverlaps RGBToHSV ResizeArea ResizeBicubic ResizeBicubicGrad
        ResizeBilinear ResizeBilinearGrad ResizeNearestNeighbor ResizeNearestNeighborGrad
        SampleDistortedBoundingBox SampleDistortedBoundingBoxV2 ScaleAndTranslate
        ScaleAndTranslateGrad StatelessSampleDistortedBoundingBox
    """,
    "sparse, ragged and composite tensors": """
        AddManySparseToTensorsMap AddSparseToTensorsMap CompositeTensorVariantFromComponents
        CompositeTensorVariantToComponents DenseToDenseSetOperation DenseToSparseSetOperation
        DeserializeManySparse DeserializeSparse RaggedCross RaggedFillEmptyRows
        RaggedFillEmptyRowsGrad RaggedGather RaggedRange RaggedTensorFromVariant
        RaggedTensorToSparse RaggedTensorToTensor RaggedTensorToVariant
        RaggedTensorToVariantGradient SerializeManySparse SerializeSparse SetSize SparseAdd
        SparseAddGrad SparseConcat SparseCross SparseCrossHashed SparseCrossV2 SparseDenseCwiseAdd
        SparseDenseCwiseDiv SparseDenseCwiseMul SparseFillEmptyRows SparseFillEmptyRowsGrad
        SparseReduceMax SparseReduceMaxSparse SparseReduceSum SparseReduceSumSparse SparseReorder
        SparseReshape SparseSlice SparseSliceGrad SparseSoftmax SparseSparseMaximum
        SparseSparseMinimum SparseSplit SparseTensorDenseAdd SparseTensorDenseMatMul SparseToDense
        SparseToSparseSetOperation TakeManySparseFromTensorsMap
    """,
}
ALLOWED_OPS = frozenset(op for ops in _ALLOWED_BY_FAMILY.values() for op in ops.split())

# The checkpoint machinery every SavedModel carries (see the module docstring): allowed in the
# saver only. The writers must not run when the model is restored.
SAVER_WRITERS = frozenset({"SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints"})
SAVER_READERS = frozenset({"RestoreV2", "Restore", "RestoreSlice"})
SAVER_OPS = SAVER_WRITERS | SAVER_READERS

PRINT_STREAMS = frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"})

_READS = "reads any file the graph names"
_WRITES = "writes any file the graph names"
_FILE_DATASET = "a dataset that reads (or writes) files the graph names"
_READER = "a TF1 reader of files or records the graph names"
_SUMMARY = "writes TensorBoard event files (or a database) where the graph says"
_DEBUG = "a debugger op: sends tensors to the debug URLs in its attributes (file:// or grpc://)"
_REMOTE = "talks to other processes or hosts"
_PYTHON = "calls a Python function registered in the loading process (threats.md 4.8)"

# Ops with a specific reason to block (critical). Everything else off ALLOWED_OPS is blocked too,
# as unknown (high).
DANGEROUS_OPS: dict[str, str] = {
    "ReadFile": _READS,
    "WriteFile": _WRITES,
    "MatchingFiles": "lists files on the loading machine (glob)",
    "PyFunc": _PYTHON,
    "PyFuncStateless": _PYTHON,
    "EagerPyFunc": _PYTHON,
    "ImmutableConst": "memory-maps a file the graph names",
    "LoadAndRemapMatrix": "reads a checkpoint file the graph names",
    "GenerateVocabRemapping": "reads vocabulary files the graph names",
    "InitializeTableFromTextFile": "fills a table from a text file the graph names",
    "InitializeTableFromTextFileV2": "fills a table from a text file the graph names",
    "FileSystemSetConfiguration": "reconfigures a file system",
    "DecodeProtoV2": "may read the protobuf descriptor file its descriptor_source names",
    "EncodeProto": "may read the protobuf descriptor file its descriptor_source names",
    "DatasetFromGraph": "runs a serialized graph held in a tensor, unchecked",
    "Abort": "terminates the loading process",
    "DumpTensor": _WRITES,
    "Copy": _DEBUG,
    "CopyHost": _DEBUG,
    "RemoteCall": _REMOTE,
    "Send": _REMOTE,
    "Recv": _REMOTE,
    "_Send": _REMOTE,
    "_Recv": _REMOTE,
    "_HostSend": _REMOTE,
    "_HostRecv": _REMOTE,
    "Rpc": _REMOTE,
    "TryRpc": _REMOTE,
    "TFRecordDataset": _FILE_DATASET,
    "TFRecordDatasetV2": _FILE_DATASET,
    "FixedLengthRecordDataset": _FILE_DATASET,
    "FixedLengthRecordDatasetV2": _FILE_DATASET,
    "TextLineDataset": _FILE_DATASET,
    "CSVDataset": _FILE_DATASET,
    "CSVDatasetV2": _FILE_DATASET,
    "ExperimentalCSVDataset": _FILE_DATASET,
    "LMDBDataset": _FILE_DATASET,
    "ExperimentalLMDBDataset": _FILE_DATASET,
    "SqlDataset": _FILE_DATASET,
    "ExperimentalSqlDataset": _FILE_DATASET,
    "MatchingFilesDataset": _FILE_DATASET,
    "ExperimentalMatchingFilesDataset": _FILE_DATASET,
    "CacheDataset": _FILE_DATASET,
    "CacheDatasetV2": _FILE_DATASET,
    "SnapshotDataset": _FILE_DATASET,
    "SnapshotDatasetV2": _FILE_DATASET,
    "SnapshotDatasetReader": _FILE_DATASET,
    "SnapshotNestedDatasetReader": _FILE_DATASET,
    "SnapshotChunkDataset": _FILE_DATASET,
    "ListSnapshotChunksDataset": _FILE_DATASET,
    "SaveDataset": _FILE_DATASET,
    "SaveDatasetV2": _FILE_DATASET,
    "LoadDataset": _FILE_DATASET,
    "DistributedSave": _FILE_DATASET,
    "DatasetToTFRecord": _FILE_DATASET,
    "ExperimentalDatasetToTFRecord": _FILE_DATASET,
    "ImportEvent": _SUMMARY,
    "StatsAggregatorSetSummaryWriter": _SUMMARY,
}
# Whole families, by name.
_DANGEROUS_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Reader(V2)?\Z|\AReader[A-Z]"), _READER),
    (re.compile(r"\AWrite[A-Za-z]*Summary\Z|SummaryWriter\Z|\ACreateSummary"), _SUMMARY),
    (re.compile(r"\ADebug"), _DEBUG),
    (re.compile(r"\A(Collective|Nccl|_Nccl|Rpc|DataServiceDataset)"), _REMOTE),
)


def dangerous_reason(op: str) -> str | None:
    """Why `op` is blocked as dangerous, or None when it is not one of the known-dangerous ops."""
    reason = DANGEROUS_OPS.get(op)
    if reason is not None:
        return reason
    for pattern, family in _DANGEROUS_PATTERNS:
        if pattern.search(op):
            return family
    return None


def check(handle: BinaryIO, size: int, *, location_prefix: str = "") -> list[Finding]:
    """Findings for the SavedModel in the first `size` bytes of `handle` (read with seek and
    read; tensor bytes are skipped, never read). Never raises on a damaged file: damage is a
    `savedmodel-malformed` finding. I/O errors of `handle` itself propagate."""
    walker = _Walker(Source(handle, size), location_prefix)
    if size > MAX_FILE_BYTES:
        walker.malformed(f"{size} bytes: protobuf cannot hold a SavedModel this large", 0)
        return walker.report()
    try:
        walker.saved_model(0, size)
    except Malformed as exc:
        walker.malformed(str(exc), exc.offset)
    return walker.report()


def check_named(
    handle: BinaryIO, size: int, name: str, *, location_prefix: str = ""
) -> list[Finding]:
    """The checks a SavedModel directory's file gets by its name, whatever its content sniffs
    as: `keras_metadata.pb` (tf.keras configs), and the SavedModel forms TensorFlow's loader
    also reads but this module cannot (`saved_model.pbtxt`, text format, read when there is no
    `saved_model.pb`; `saved_model.cpb`, chunked for models past 2 GiB): blocked, not waved
    through as text or unknown bytes."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if base == KERAS_METADATA_NAME:
        return check_keras_metadata(handle, size, location_prefix=location_prefix)
    if base in UNREADABLE_SAVED_MODELS:
        return [
            Finding(
                "savedmodel-not-scanned",
                Severity.HIGH,
                f"{base} is {UNREADABLE_SAVED_MODELS[base]}: TensorFlow loads it, but this "
                "engine cannot check its ops",
                location_prefix.removesuffix(": ") or None,
            )
        ]
    return []


def check_keras_metadata(
    handle: BinaryIO, size: int, *, location_prefix: str = ""
) -> list[Finding]:
    """Findings for `keras_metadata.pb` (tf.keras' SavedMetadata): proxy.scan.keras's checks of
    the JSON config of every object in it. Never raises on a damaged file."""
    source = Source(handle, size)
    findings: list[Finding] = []
    where = location_prefix.removesuffix(": ")
    try:
        for index, (number, wire, length, pos) in enumerate(source.fields(0, size)):
            if number != KERAS_NODES:
                continue
            expect_message(number, wire, pos)
            path, configs = "", []
            for inner, inner_wire, inner_length, inner_pos in source.fields(pos, pos + length):
                if inner == KERAS_NODE_PATH:
                    path = _decode(_string(source, inner, inner_wire, inner_length, inner_pos))
                elif inner == KERAS_METADATA:
                    if inner_length > MAX_KERAS_METADATA_BYTES:
                        raise Malformed("a Keras config is too large", inner_pos)
                    configs.append((inner_wire, inner_length, inner_pos))
            location = f"{location_prefix}nodes[{index}]" + (f"({path})" if path else "")
            for config_wire, config_length, config_pos in configs:  # read one at a time
                config = _bytes(source, KERAS_METADATA, config_wire, config_length, config_pos)
                findings.extend(keras.check_config(config, location=location))
    except Malformed as exc:
        findings.append(
            Finding(
                "keras-malformed",
                Severity.HIGH,
                f"keras_metadata.pb: {exc}",
                f"{where}: byte {exc.offset}" if where else f"byte {exc.offset}",
            )
        )
    return findings


def _bytes(source: Source, number: int, wire: int, length: int, pos: int) -> bytes:
    if wire != LEN:
        raise Malformed(f"field {number} should be a string but has wire type {wire}", pos)
    return source.read(pos, length)


def _string(source: Source, number: int, wire: int, length: int, pos: int) -> bytes:
    if length > MAX_STRING_BYTES:
        raise Malformed(f"string field {number} is longer than {MAX_STRING_BYTES}", pos)
    return _bytes(source, number, wire, length, pos)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _node_of(tensor: str) -> str:
    """The node a tensor or input name refers to: `^ctrl` -> `ctrl`, `node:0` -> `node`."""
    return tensor.removeprefix("^").split(":", 1)[0]


@dataclass
class _Seen:
    """One kind of finding about one op: how often, and where first."""

    count: int
    path: str


MODEL = 0  # owner id of the main graph's nodes outside the saver


@dataclass
class _MetaGraph:
    """What one meta graph's walk remembers until its functions are all known."""

    path: str
    saver_entries: frozenset[str] = frozenset()  # the nodes the SaverDef names
    saver_scope: str | None = None  # TF1: the saver's name scope, e.g. "save/"
    restore_node: str = ""
    tainted: str | None = None  # why the saver's nodes count as the model's
    next_owner: int = 1
    functions: dict[str, list[int]] = field(default_factory=dict)  # name -> owner ids
    function_ids: set[int] = field(default_factory=set)
    saver_nodes: dict[str, int] = field(default_factory=dict)  # main-graph saver node -> owner
    saver_inputs: dict[str, list[str]] = field(default_factory=dict)  # ... -> saver inputs
    calls: dict[int, set[str]] = field(default_factory=dict)  # owner -> names it may call
    pending: dict[str, _Seen] = field(default_factory=dict)  # names that are no allowed op
    saver_uses: dict[tuple[str, int], _Seen] = field(default_factory=dict)
    named_roots: set[str] = field(default_factory=set)  # functions the loader can call by name
    names: int = 0
    graphs: int = 0
    main_nodes: int = 0

    def is_saver(self, node: str) -> bool:
        if node in self.saver_entries:
            return True
        return self.saver_scope is not None and node.startswith(self.saver_scope)

    def owner(self) -> int:
        self.next_owner += 1
        return self.next_owner - 1


class _Walker:
    def __init__(self, source: Source, prefix: str) -> None:
        self.source = source
        self.prefix = prefix
        self.nodes = 0
        self.findings: list[Finding] = []
        # (rule, op) -> occurrences, in the order first seen
        self.grouped: dict[tuple[str, str], tuple[Severity, str, _Seen]] = {}

    def where(self, path: str) -> str | None:
        if self.prefix and path:
            return f"{self.prefix}{path}"
        return self.prefix.removesuffix(": ") or path or None

    def malformed(self, message: str, offset: int) -> None:
        self.findings.append(
            Finding("savedmodel-malformed", Severity.HIGH, message, self.where(f"byte {offset}"))
        )

    def flag(
        self, rule: str, severity: Severity, op: str, message: str, path: str, count: int = 1
    ) -> None:
        seen = self.grouped.get((rule, op))
        if seen is None:
            self.grouped[(rule, op)] = (severity, message, _Seen(count, path))
        else:
            seen[2].count += count

    def report(self) -> list[Finding]:
        result: list[Finding] = []
        for (rule, _), (severity, message, seen) in self.grouped.items():
            more = f" ({seen.count} nodes)" if seen.count > 1 else ""
            result.append(Finding(rule, severity, message + more, self.where(seen.path)))
        return result + self.findings

    # --- SavedModel and MetaGraphDef ---------------------------------------------------------

    def saved_model(self, start: int, end: int) -> None:
        graphs = 0
        for number, wire, length, pos in self.source.fields(start, end):
            if number == SAVED_MODEL_META_GRAPHS:
                expect_message(number, wire, pos)
                if graphs >= MAX_META_GRAPHS:
                    raise Malformed(f"more than {MAX_META_GRAPHS} meta graphs", pos)
                self.meta_graph(pos, pos + length, graphs)
                graphs += 1
        if not graphs:
            self.malformed("no meta graph: nothing to check, and nothing a loader could use", 0)

    def meta_graph(self, start: int, end: int, index: int) -> None:
        graph = _MetaGraph(f"meta_graphs[{index}]")
        # The SaverDef first: it says which nodes are the saver's. A damaged file is walked
        # anyway, so the findings before the damage are kept; the error is raised again below.
        saver: dict[int, str] = {}
        try:
            for number, wire, length, pos in self.source.fields(start, end):
                if number == META_SAVER_DEF:
                    expect_message(number, wire, pos)
                    for inner, inner_wire, inner_length, inner_pos in self.source.fields(
                        pos, pos + length
                    ):
                        if inner in (SAVER_SAVE_TENSOR, SAVER_RESTORE_OP):
                            raw = _string(self.source, inner, inner_wire, inner_length, inner_pos)
                            saver[inner] = _decode(raw)  # protobuf: the last value wins
        except Malformed:
            pass
        self.saver(graph, saver.get(SAVER_SAVE_TENSOR, ""), saver.get(SAVER_RESTORE_OP, ""))
        for number, wire, length, pos in self.source.fields(start, end):
            if number == META_GRAPH_DEF:  # repeated occurrences merge, as protobuf does
                expect_message(number, wire, pos)
                self.graph_def(graph, pos, pos + length)
        if not graph.graphs:
            self.malformed(f"{graph.path} has no graph_def", start)
        for number, wire, length, pos in self.source.fields(start, end):
            if number == META_INFO_DEF:
                expect_message(number, wire, pos)
                self.meta_info(graph, pos, pos + length)
            elif number == META_COLLECTION_DEF:
                expect_message(number, wire, pos)
                self.collection(graph, pos, pos + length)
            elif number == META_SIGNATURE_DEF:
                expect_message(number, wire, pos)
                self.signature(graph, pos, pos + length)
            elif number == META_OBJECT_GRAPH_DEF:
                expect_message(number, wire, pos)
                self.object_graph(graph, pos, pos + length)
        self.resolve(graph)

    def saver(self, graph: _MetaGraph, save_tensor: str, restore_op: str) -> None:
        save_node, restore_node = _node_of(save_tensor), _node_of(restore_op)
        graph.saver_entries = frozenset(name for name in (save_node, restore_node) if name)
        graph.restore_node = restore_node
        scope = restore_node.rpartition("/")[0]
        if scope and save_node.startswith(f"{scope}/"):
            graph.saver_scope = f"{scope}/"  # TF1: Saver builds its nodes under one scope

    def meta_info(self, graph: _MetaGraph, start: int, end: int) -> None:
        for number, wire, length, pos in self.source.fields(start, end):
            if number == INFO_FUNCTION_ALIASES:
                expect_message(number, wire, pos)
                for name in self.map_strings(pos, pos + length, MAP_VALUE):
                    self.remember(graph, pos)
                    graph.named_roots.add(name)

    def collection(self, graph: _MetaGraph, start: int, end: int) -> None:
        """A collection's node list names nodes the TF1 loader runs (main_op, legacy_init_op)."""
        for number, wire, length, pos in self.source.fields(start, end):
            if number != MAP_VALUE:
                continue
            expect_message(number, wire, pos)
            for inner, inner_wire, inner_length, inner_pos in self.source.fields(pos, pos + length):
                if inner != COLLECTION_NODE_LIST:
                    continue
                expect_message(inner, inner_wire, inner_pos)
                for value, value_wire, value_length, value_pos in self.source.fields(
                    inner_pos, inner_pos + inner_length
                ):
                    if value == NODE_LIST_VALUE:
                        raw = _string(self.source, value, value_wire, value_length, value_pos)
                        self.uses(graph, _decode(raw), "a collection")

    def signature(self, graph: _MetaGraph, start: int, end: int) -> None:
        for number, wire, length, pos in self.source.fields(start, end):
            if number != MAP_VALUE:
                continue
            expect_message(number, wire, pos)
            for inner, inner_wire, inner_length, inner_pos in self.source.fields(pos, pos + length):
                if inner in (SIGNATURE_INPUTS, SIGNATURE_OUTPUTS):
                    expect_message(inner, inner_wire, inner_pos)
                    for info, info_wire, info_length, info_pos in self.source.fields(
                        inner_pos, inner_pos + inner_length
                    ):
                        if info == MAP_VALUE:
                            expect_message(info, info_wire, info_pos)
                            self.tensor_info(graph, info_pos, info_pos + info_length, 0)

    def tensor_info(self, graph: _MetaGraph, start: int, end: int, depth: int) -> None:
        if depth > MAX_ATTR_DEPTH:
            raise Malformed(f"tensor infos nested deeper than {MAX_ATTR_DEPTH}", start)
        for number, wire, length, pos in self.source.fields(start, end):
            if number == TENSOR_INFO_NAME:
                name = _decode(_string(self.source, number, wire, length, pos))
                self.uses(graph, name, "a signature")
            elif number == TENSOR_INFO_COO_SPARSE:
                expect_message(number, wire, pos)
                for inner, inner_wire, inner_length, inner_pos in self.source.fields(
                    pos, pos + length
                ):
                    if inner in COO_SPARSE_NAMES:
                        raw = _string(self.source, inner, inner_wire, inner_length, inner_pos)
                        self.uses(graph, _decode(raw), "a signature")
            elif number == TENSOR_INFO_COMPOSITE:
                expect_message(number, wire, pos)
                for inner, inner_wire, inner_length, inner_pos in self.source.fields(
                    pos, pos + length
                ):
                    if inner == COMPOSITE_COMPONENTS:
                        expect_message(inner, inner_wire, inner_pos)
                        self.tensor_info(graph, inner_pos, inner_pos + inner_length, depth + 1)

    def uses(self, graph: _MetaGraph, tensor: str, user: str) -> None:
        node = _node_of(tensor)
        if graph.tainted is None and graph.is_saver(node):
            graph.tainted = f"{user} uses the saver's node {node!r}"

    def object_graph(self, graph: _MetaGraph, start: int, end: int) -> None:
        """TF2's loader makes every concrete function of the object graph callable."""
        for number, wire, length, pos in self.source.fields(start, end):
            if number == OBJECT_GRAPH_CONCRETE_FUNCTIONS:
                expect_message(number, wire, pos)
                for name in self.map_strings(pos, pos + length, MAP_KEY):
                    self.remember(graph, pos)
                    graph.named_roots.add(name)

    def map_strings(self, start: int, end: int, which: int) -> Iterable[str]:
        for number, wire, length, pos in self.source.fields(start, end):
            if number == which:
                yield _decode(_string(self.source, number, wire, length, pos))

    # --- GraphDef, functions, nodes ----------------------------------------------------------

    def graph_def(self, graph: _MetaGraph, start: int, end: int) -> None:
        for number, wire, length, pos in self.source.fields(start, end):
            if number == GRAPH_NODE:
                expect_message(number, wire, pos)
                path = f"{graph.path}.graph_def.node[{graph.main_nodes}]"
                graph.main_nodes += 1
                self.node(graph, pos, pos + length, path, None)
            elif number == GRAPH_LIBRARY:
                expect_message(number, wire, pos)
                self.library(graph, pos, pos + length)
        graph.graphs += 1

    def library(self, graph: _MetaGraph, start: int, end: int) -> None:
        for number, wire, length, pos in self.source.fields(start, end):
            if number == LIBRARY_FUNCTION:
                expect_message(number, wire, pos)
                self.function(graph, pos, pos + length)
            elif number in (LIBRARY_GRADIENT, LIBRARY_REGISTERED_GRADIENT):
                # A gradient function runs whenever the function it differentiates is
                # differentiated: the model can reach it.
                expect_message(number, wire, pos)
                which = GRADIENT_FUNC if number == LIBRARY_GRADIENT else REGISTERED_GRADIENT_FUNC
                for name in self.map_strings(pos, pos + length, which):
                    self.remember(graph, pos)
                    graph.named_roots.add(name)

    def function(self, graph: _MetaGraph, start: int, end: int) -> None:
        owner = graph.owner()
        graph.function_ids.add(owner)
        name = ""
        body: list[tuple[int, int]] = []
        damage: Malformed | None = None
        try:
            for number, wire, length, pos in self.source.fields(start, end):
                if number == FUNCTION_SIGNATURE:
                    expect_message(number, wire, pos)
                    for inner, inner_wire, inner_length, inner_pos in self.source.fields(
                        pos, pos + length
                    ):
                        if inner == OP_DEF_NAME:
                            raw = _string(self.source, inner, inner_wire, inner_length, inner_pos)
                            name = _decode(raw)
                elif number == FUNCTION_NODE_DEF:
                    expect_message(number, wire, pos)
                    body.append((pos, length))
                    self.remember(graph, pos)
        except Malformed as exc:
            damage = exc  # check the nodes read before the damage, then report it
        # The body after the name (which may follow it in the bytes), so locations show it.
        self.remember(graph, start)
        graph.functions.setdefault(name, []).append(owner)
        label = f"{graph.path}.library.function({name or '?'})"
        for index, (pos, length) in enumerate(body):
            self.node(graph, pos, pos + length, f"{label}.node_def[{index}]", owner)
        if damage is not None:
            raise damage

    def node(
        self, graph: _MetaGraph, start: int, end: int, path: str, function: int | None
    ) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Malformed(f"more than {MAX_NODES} nodes", start)
        name = op = ""
        calls: list[str] = []
        streams: list[str | None] = []
        saver_inputs: list[str] = []
        for number, wire, length, pos in self.source.fields(start, end):
            if number == NODE_NAME:
                name = _decode(_string(self.source, number, wire, length, pos))
            elif number == NODE_OP:
                op = _decode(_string(self.source, number, wire, length, pos))
            elif number == NODE_INPUT and function is None:
                source_node = _node_of(_decode(_string(self.source, number, wire, length, pos)))
                if graph.is_saver(source_node):
                    self.remember(graph, pos)
                    saver_inputs.append(source_node)
            elif number == NODE_ATTR:
                expect_message(number, wire, pos)
                self.attr_entry(graph, pos, pos + length, calls, streams, 0)
        here = f"{path}({name})" if name else path
        if function is not None:
            owner = function
        elif graph.is_saver(name):
            owner = graph.saver_nodes.get(name) or graph.owner()
            graph.saver_nodes[name] = owner
            graph.saver_inputs.setdefault(name, []).extend(saver_inputs)
            self.remember(graph, start)
        else:
            owner = MODEL
            if saver_inputs and graph.tainted is None:
                graph.tainted = f"the model's node {name!r} uses the saver's {saver_inputs[0]!r}"
        self.op(graph, op, here, owner, streams, start)
        for called in calls:
            self.op(graph, called, f"{here} (function attribute)", owner, None, start)

    def attr_entry(
        self,
        graph: _MetaGraph,
        start: int,
        end: int,
        calls: list[str],
        streams: list[str | None],
        depth: int,
    ) -> None:
        """One `map<string, AttrValue>` entry: functions it names go to `calls`, and an
        `output_stream` value to `streams` (None when it is a placeholder)."""
        key = ""
        values: list[tuple[int, int]] = []
        for number, wire, length, pos in self.source.fields(start, end):
            if number == MAP_KEY:
                key = _decode(_string(self.source, number, wire, length, pos))
            elif number == MAP_VALUE:
                expect_message(number, wire, pos)
                values.append((pos, length))
        for pos, length in values:
            found = streams if key == "output_stream" and depth == 0 else None
            self.attr_value(graph, pos, pos + length, calls, found, depth)

    def attr_value(
        self,
        graph: _MetaGraph,
        start: int,
        end: int,
        calls: list[str],
        streams: list[str | None] | None,
        depth: int,
    ) -> None:
        for number, wire, length, pos in self.source.fields(start, end):
            if number == ATTR_FUNC:
                expect_message(number, wire, pos)
                self.name_attr_list(graph, pos, pos + length, calls, depth + 1)
            elif number == ATTR_LIST:
                expect_message(number, wire, pos)
                for inner, inner_wire, inner_length, inner_pos in self.source.fields(
                    pos, pos + length
                ):
                    if inner == LIST_FUNC:
                        expect_message(inner, inner_wire, inner_pos)
                        end_pos = inner_pos + inner_length
                        self.name_attr_list(graph, inner_pos, end_pos, calls, depth + 1)
            elif streams is not None and number == ATTR_S:
                streams.append(_decode(_string(self.source, number, wire, length, pos)))
            elif streams is not None and number == ATTR_PLACEHOLDER:
                streams.append(None)

    def name_attr_list(
        self, graph: _MetaGraph, start: int, end: int, calls: list[str], depth: int
    ) -> None:
        if depth > MAX_ATTR_DEPTH:
            raise Malformed(f"function attributes nested deeper than {MAX_ATTR_DEPTH}", start)
        for number, wire, length, pos in self.source.fields(start, end):
            if number == NAME_ATTR_LIST_NAME:
                self.remember(graph, pos)
                calls.append(_decode(_string(self.source, number, wire, length, pos)))
            elif number == NAME_ATTR_LIST_ATTR:
                expect_message(number, wire, pos)
                self.attr_entry(graph, pos, pos + length, calls, [], depth)

    def remember(self, graph: _MetaGraph, pos: int) -> None:
        graph.names += 1
        if graph.names > MAX_NAMES:
            raise Malformed(f"more than {MAX_NAMES} functions, calls or saver nodes", pos)

    def op(
        self,
        graph: _MetaGraph,
        op: str,
        path: str,
        owner: int,
        streams: list[str | None] | None,
        pos: int,
    ) -> None:
        """Check one op a node runs (or a function attribute names)."""
        if op in SAVER_OPS:
            seen = graph.saver_uses.get((op, owner))
            if seen is None:
                self.remember(graph, pos)
                graph.saver_uses[(op, owner)] = _Seen(1, path)
            else:
                seen.count += 1
        elif op == "PrintV2":
            bad = [s for s in streams or [None] if s is None or s not in PRINT_STREAMS]
            if streams == [] or not bad:
                return  # the default output_stream is stderr
            shown = "a placeholder" if bad[0] is None else repr(bad[0])
            self.flag(
                "savedmodel-print-to-file",
                Severity.CRITICAL,
                op,
                f"PrintV2 writes to {shown}, not stderr, stdout or the log: a file:// stream "
                "appends to any file the graph names",
                path,
            )
        elif op in ALLOWED_OPS:
            return
        elif (reason := dangerous_reason(op)) is not None:
            self.flag("savedmodel-dangerous-op", Severity.CRITICAL, op, f"{op}: {reason}", path)
        else:
            # A function of the library, or an op no allowlist knows: decided in `resolve`.
            calls = graph.calls.get(owner)
            if calls is None:
                calls = graph.calls[owner] = set()
            if op not in calls:
                self.remember(graph, pos)
                calls.add(op)
            seen = graph.pending.get(op)
            if seen is None:
                graph.pending[op] = _Seen(1, path)
            else:
                seen.count += 1

    # --- once a meta graph is read -------------------------------------------------------------

    def resolve(self, graph: _MetaGraph) -> None:
        for op, seen in graph.pending.items():
            if op in graph.functions:
                continue
            shown = repr(op) if op else "an empty op name"
            message = (
                f"op {shown} is not on Airlock's TensorFlow op allowlist and no function of "
                "the library has that name (a custom-op library or an unusual kernel)"
            )
            self.flag("savedmodel-unknown-op", Severity.HIGH, op, message, seen.path, seen.count)
        self.resolve_saver(graph)

    def resolve_saver(self, graph: _MetaGraph) -> None:
        if not graph.saver_uses:
            return
        saver_owners = set(graph.saver_nodes.values())
        if graph.tainted is not None:
            saver_owners = set()  # the model runs the saver's nodes: they are the model's
        # TF1: the restore op and the saver nodes it depends on run when the model is loaded.
        restore_side: set[str] = set()
        todo = [graph.restore_node] if graph.restore_node in graph.saver_nodes else []
        while todo:
            node = todo.pop()
            if node not in restore_side:
                restore_side.add(node)
                todo.extend(graph.saver_inputs.get(node, ()))
        restore_owners = {graph.saver_nodes[n] for n in restore_side} & saver_owners
        save_owners = saver_owners - restore_owners
        model_owners = {MODEL} | (set(graph.saver_nodes.values()) - saver_owners)

        def callees(owners: Iterable[int]) -> set[int]:
            found: set[int] = set()
            for owner in owners:
                for name in graph.calls.get(owner, ()):
                    found.update(graph.functions.get(name, ()))
            return found

        def reach(roots: set[int]) -> set[int]:
            seen: set[int] = set()
            todo = list(roots)
            while todo:
                owner = todo.pop()
                if owner not in seen:
                    seen.add(owner)
                    todo.extend(callees([owner]) - seen)
            return seen

        named = {i for name in graph.named_roots for i in graph.functions.get(name, ())}
        called = reach(callees(set(graph.saver_nodes.values()) | {MODEL}) | named)
        # Functions nothing in the graph calls are callable all the same (the loader registers
        # every function of the library): the model's.
        model_reach = reach(callees(model_owners) | named | (graph.function_ids - called))
        restore_reach = reach(callees(restore_owners))
        save_reach = reach(callees(save_owners))
        for (op, owner), seen in graph.saver_uses.items():
            on_restore = owner in restore_reach or owner in restore_owners
            on_save = owner in save_reach or owner in save_owners
            if owner in model_reach or owner in model_owners or not (on_restore or on_save):
                why = graph.tainted or "the model can run it, not only TF's checkpoint code"
            elif op in SAVER_WRITERS and on_restore:
                why = "it is on the restore side, which the loader runs"
            else:
                continue
            self.flag(
                "savedmodel-saver-op",
                Severity.CRITICAL,
                op,
                f"checkpoint op {op} outside the saver ({why}): it reads or writes "
                "checkpoint files at a path the graph chooses",
                seen.path,
                seen.count,
            )
