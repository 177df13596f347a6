export { sagaSteps } from './saga.definition';
export type {
  Cancellation,
  Command,
  Compensation,
  CompensationSpec,
  RemoteStepSpec,
  ReplyHandlers,
  SagaData,
  SagaDefinition,
  SagaStep,
  StepResult,
} from './saga.definition';
export { DEADLINE_EXCEEDED, DEFAULT_ENGINE_OPTIONS, SagaEngine } from './saga.engine';
export type { SagaEffect, SagaEngineOptions, SagaState, StepRecord, StepStatus, Transition } from './saga.engine';
export { SagaOrchestrator } from './saga.orchestrator';
export type { Cause } from './saga.orchestrator';
export { SagaStore, stateOf } from './saga.store';
export type { AttemptRow, SagaInstance, SagaListFilter } from './saga.store';
export { PostgresSagaStore } from './postgres-saga.store';
export { planOf, typeOf } from './saga-plan';
export { SagaDeadlines } from './saga-deadlines';
export { SAGA_DEFINITIONS, Sagas } from './sagas';
export type { OperatorResult, Refusal } from './sagas';
export { SagaModule } from './saga.module';
