// The public surface: re-exports only.

export { init, Edgegrad } from "./edgegrad.js";
export type { MatmulOptions, Shape2D } from "./edgegrad.js";
export type { InitSource } from "./abi.js";
export { Tensor } from "./tensor.js";
export type { MemoryInfo } from "./memory.js";
export { Sequential } from "./model.js";
export type {
  CompileOptions,
  EpochLogs,
  Evaluation,
  FitOptions,
  Gradients,
  History,
  Inputs,
  LayerInfo,
  LayerWeights,
  SequentialOptions,
  Targets,
} from "./model.js";
export { dense, ACTIVATIONS, INITIALIZERS } from "./layers.js";
export type { Activation, DenseOptions, DenseSpec, Initializer } from "./layers.js";
export { LOSSES } from "./losses.js";
export type { LossName } from "./losses.js";
export { sgd, OPTIMIZERS } from "./optimizers.js";
export type { OptimizerName, OptimizerSpec, SgdOptions } from "./optimizers.js";
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
  STATUS_NAMES,
} from "./errors.js";
export type { StatusName } from "./errors.js";
