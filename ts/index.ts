// The public surface: re-exports only. Optional parts are subpath entries of their own, so an
// app that does not use them does not carry them: "edgegrad/schedules" (ts/schedules.ts),
// "edgegrad/callbacks" (ts/callbacks.ts) and "edgegrad/safetensors" (ts/safetensors.ts).

/**
 * The core API: `init()`, tensors, `Sequential` models, layers, losses, optimizers and errors.
 * @module edgegrad
 */

export { init, Edgegrad } from "./edgegrad.js";
export type { MatmulOptions, Shape2D } from "./edgegrad.js";
export type { InitSource } from "./abi.js";
export { Tensor } from "./tensor.js";
export type { MemoryInfo } from "./memory.js";
export { Sequential } from "./model.js";
export type {
  BatchNormBuffers,
  BatchNormWeights,
  CompileOptions,
  DenseWeights,
  DropoutWeights,
  EpochLogs,
  Evaluation,
  FitOptions,
  Gradients,
  History,
  Inputs,
  LayerInfo,
  LayerStepStats,
  LayerWeights,
  LayerWeightsInput,
  OptimizerState,
  OptimizerStateArray,
  ParamGroup,
  ParamInfo,
  SequentialOptions,
  StepStats,
  Targets,
} from "./model.js";
export { dense, batchNorm, dropout, ACTIVATIONS, INITIALIZERS, LAYER_KINDS, PARAM_ROLES } from "./layers.js";
export type {
  Activation,
  BatchNormOptions,
  BatchNormSpec,
  DenseOptions,
  DenseSpec,
  DropoutSpec,
  Initializer,
  LayerKind,
  LayerSpec,
  ParamRole,
} from "./layers.js";
export { LOSSES } from "./losses.js";
export type { LossName } from "./losses.js";
export { sgd, adam, adamw, rmsprop, adagrad, OPTIMIZERS } from "./optimizers.js";
export type {
  AdagradOptions,
  AdagradSpec,
  AdamOptions,
  AdamSpec,
  OptimizerName,
  OptimizerSpec,
  RmspropOptions,
  RmspropSpec,
  SgdOptions,
  SgdSpec,
} from "./optimizers.js";
export {
  EdgegradError,
  InvalidArgumentError,
  ShapeError,
  DisposedError,
  OutOfMemoryError,
  StateError,
  NonFiniteError,
  AbiError,
  InternalError,
  CheckpointError,
  PoisonedError,
  STATUS_NAMES,
} from "./errors.js";
export type { CheckpointProblem, NonFiniteDetails, StatusName } from "./errors.js";
export type { LoadOptions, SaveOptions } from "./checkpoint.js";
