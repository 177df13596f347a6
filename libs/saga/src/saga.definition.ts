/**
 * The saga definition DSL: a saga type is a table of steps — remote steps that send a command to a participant's
 * endpoint (`Participants` in the contracts) and local steps run in the orchestrator's own transaction — with how it
 * ends and its business key. Write steps with `sagaSteps<D>()`: a remote step's command body, reply handlers and
 * compensation are typed by the endpoint it references, so a wrong body, a missing reply handler or a forgotten
 * compensation does not compile.
 * Source: Eventuate Tram sagas (FTGO `CreateOrderSaga`: step / invokeParticipant / onReply / withCompensation).
 */
import type { CommandEndpoint, Message, MessageOf, MessageSubject } from '@orderflow/contracts';
import type { Tx } from '@orderflow/persistence';

/** A failed step names why; the reason becomes the saga's cancellation reason. */
export type StepResult = { ok: true } | { ok: false; reason: string; detail?: string };

/** A command a step sends: a subject of `MessageTypes` with a body of its class (checked at compile time). */
export type Command = Message;

/**
 * Reply subject → how that reply ends the step, the body typed by the subject's class, given the saga's data to check
 * it against. A reply that contradicts what the step asked for (another amount, other lines) throws
 * `UnexpectedReplyError`: it changes nothing and is dead-lettered, never applied.
 */
export type ReplyHandlers<D = any, R extends MessageSubject = MessageSubject> = { [S in R]?: (body: MessageOf<S>, data: D) => StepResult };

/** What every saga's data carries: the attempt's id, which participants key their effects on. */
export interface SagaData {
  sagaId: string;
}

/** Why a saga was cancelled: the failed step's reason and detail. */
export interface Cancellation {
  reason: string;
  detail: string | null;
}

export interface Compensation<D> {
  name: string;
  /** The participant's endpoint it sends to (the compensation its step's endpoint declares). */
  endpoint?: CommandEndpoint;
  invoke: (data: D) => Command;
  /** The reply subjects that end it. */
  replies: readonly MessageSubject[];
  /** Its first deadline, ms (doubled after every send up to the engine's `compensationBackoffMaxMs`). */
  timeoutMs?: number;
  /** Compensations (by name) that must succeed before this one is sent; by default it runs at once. */
  after?: string[];
}

/** A step as the engine runs it; written with `sagaSteps<D>()`. */
export interface SagaStep<D> {
  name: string;
  /** A remote step: the participant's endpoint it sends to. */
  endpoint?: CommandEndpoint;
  /** A remote step: the command to send. */
  invoke?: (data: D) => Command;
  /** For a remote step: reply subject → how that reply ends the step (checked against the saga's data). */
  onReply?: ReplyHandlers<D>;
  /**
   * A local step: run by the orchestrator in the saga's own transaction (its writes commit with the saga's state).
   * The engine only sees that the step is local; the orchestrator calls the function.
   */
  local?: (tx: Tx, data: D) => Promise<StepResult>;
  /** The point of no return: once it succeeded the saga only goes forward (the steps after it are retriable). */
  pivot?: true;
  /** How long this step waits for its reply before its command is sent again; the engine's default otherwise. */
  timeoutMs?: number;
  /** The undo of this step, sent when a later step fails; it must be idempotent and always succeed. */
  compensation?: Compensation<D>;
}

/**
 * Everything about one saga type: its steps, how it ends, its business key and what its view shows. The orchestrator
 * (`SagaOrchestrator<D>`) runs any definition; a new saga type is a definition and a controller that starts it.
 * @typeParam D the data an attempt carries from step to step
 * @typeParam V what `query.order.saga` shows of it (`SagaView<V>`)
 */
export interface SagaDefinition<D extends SagaData, V = unknown> {
  /** The saga type, stored in `saga_instances.type`. */
  name: string;
  steps: SagaStep<D>[];
  /** The business key (stored in `saga_instances.business_key`): the `Correlation-Id` of every message the saga sends. */
  key: (data: D) => string;
  /** The event published, in the transaction that completes the saga. */
  completed: (data: D) => Message;
  /** The event published, in the transaction that cancels the saga. */
  cancelled: (data: D, why: Cancellation) => Message;
  /** Local writes in the transaction that cancels the saga (PlaceOrder: reject the order). */
  onCancelled?: (tx: Tx, data: D, why: Cancellation) => Promise<void>;
  /** Local writes in the transaction that starts a new attempt of a CANCELLED saga (PlaceOrder: the order back to PENDING). */
  onRetry?: (tx: Tx, data: D) => Promise<void>;
  /** The business deadline of an attempt, ms from its start; the engine's `sagaDeadlineMs` otherwise. */
  deadlineMs?: number;
  /** What `saga show` shows of an attempt's data (`SagaView<V>['data']`). */
  view: (data: D) => V;
}

/** How a remote step on endpoint `E` is written: its command's body, a handler for every reply, and its compensation. */
export type RemoteStepSpec<D, E extends CommandEndpoint> = {
  /** The command's body for an attempt with `data` (its subject is the endpoint's). */
  command: (data: D) => MessageOf<E['command']>;
  /** Every reply the endpoint declares → how it ends the step. */
  onReply: { [S in E['replies'][number]]: (body: MessageOf<S>, data: D) => StepResult };
  pivot?: true;
  timeoutMs?: number;
} & (E['compensation'] extends CommandEndpoint
  ? {
      /** Required: the endpoint declares an undo, and a step that can be undone must be. */
      compensation: CompensationSpec<D, E['compensation']>;
    }
  : { compensation?: never });

/** A compensation: its name (as history and `saga list --step` show it) and its command's body. */
export interface CompensationSpec<D, U extends CommandEndpoint> {
  name: string;
  command: (data: D) => MessageOf<U['command']>;
  timeoutMs?: number;
  after?: string[];
}

/**
 * Step builders for sagas whose data is `D`:
 * `invoke(name, endpoint, spec)` a remote step (command and replies from the endpoint), `local(name, run)` a local one.
 */
export function sagaSteps<D extends SagaData>() {
  return {
    invoke<E extends CommandEndpoint>(name: string, endpoint: E, spec: RemoteStepSpec<D, E>): SagaStep<D> {
      const command = (data: D) => ({ subject: endpoint.command, body: spec.command(data) }) as Command;
      const undo = spec.compensation as CompensationSpec<D, CommandEndpoint> | undefined;
      const undoing = endpoint.compensation;
      if (!undo !== !undoing) throw new Error(`saga step ${name}: a compensation exactly when ${endpoint.command} declares one`);
      return {
        name,
        endpoint,
        invoke: command,
        onReply: spec.onReply as ReplyHandlers<D>,
        ...(spec.pivot ? { pivot: true as const } : {}),
        ...(spec.timeoutMs !== undefined ? { timeoutMs: spec.timeoutMs } : {}),
        ...(undo && undoing
          ? {
              compensation: {
                name: undo.name,
                endpoint: undoing,
                invoke: (data: D) => ({ subject: undoing.command, body: undo.command(data) }) as Command,
                replies: undoing.replies,
                ...(undo.timeoutMs !== undefined ? { timeoutMs: undo.timeoutMs } : {}),
                ...(undo.after ? { after: undo.after } : {}),
              },
            }
          : {}),
      };
    },
    local(name: string, run: (tx: Tx, data: D) => Promise<StepResult>, options: { pivot?: true } = {}): SagaStep<D> {
      return { name, local: run, ...options };
    },
  };
}
