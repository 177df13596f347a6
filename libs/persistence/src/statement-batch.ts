import type { Connection, PoolClient } from 'pg';
import { types } from 'pg';

// pg's own mapping of a parameter to its text (dates, arrays, buffers, objects as JSON), as its `Query` binds them;
// `pg/lib/*` is in pg's "exports" map, and pg-cursor binds its values with it too.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { prepareValue } = require('pg/lib/utils') as { prepareValue: (value: unknown) => unknown };

/** A statement as `pg` takes it: with a `name`, prepared once per connection and then only bound and executed. */
export interface Statement {
  text: string;
  values?: unknown[];
  name?: string;
  /** Its rows are wanted (Postgres describes them); without it they are dropped. */
  rows?: boolean;
}

/**
 * What a batch of statements came to: the rows of each statement that ran (in order; empty for one whose rows were
 * not wanted), then the first error, if one failed. Postgres skips every statement after a failed one.
 */
export interface BatchAnswer {
  rows: any[][];
  error?: Error;
  /** The error came before a statement this batch prepared was known to exist: the connection's names are unsure. */
  unsurePrepared?: boolean;
}

/** A field of a row as Postgres describes it (RowDescription) and pg passes it on. */
interface Field {
  name: string;
  dataTypeID: number;
  format: string;
}

/**
 * Statements sent to Postgres as one batch of the extended query protocol, with one Sync at its end: Postgres runs
 * them in order and answers them together, flushing its socket once. pg's own `Query` ends every statement with a
 * Sync, so Postgres flushes (and wakes this process) once per statement, even in pg's pipeline mode. After an error
 * Postgres skips the batch's remaining statements up to the Sync: in a transaction, they could only fail anyway
 * (25P02). A named statement is parsed the first time a connection runs it (pg's `parsedStatements`).
 * Used as a pg "submittable" (`client.query(batch)`), as pg-cursor is.
 * Sources: PostgreSQL docs, "Pipelining" and "Extended Query" (protocol flow); libpq's pipeline mode
 * (`PQpipelineSync`: one Sync for many statements); node-postgres docs, "Submittable".
 */
export class StatementBatch {
  private readonly rows: any[][] = [];
  private fields: { name: string; parse: (raw: string) => unknown }[] | undefined;
  private current: any[] = [];
  /** Indexes of the statements this batch parses for the first time on its connection. */
  private readonly fresh: number[] = [];
  private connection: (Connection & { parsedStatements: Record<string, string> }) | undefined;
  private answered = false;
  /** A value pg could not bind: the batch was cut short before it. */
  private unbound: Error | undefined;

  constructor(
    private readonly statements: Statement[],
    private readonly done: (answer: BatchAnswer) => void,
  ) {}

  /**
   * Writes the whole batch at once (the socket corked): Parse when needed, Bind, Describe when rows are wanted,
   * Execute; then Sync. A value pg cannot bind (it throws) ends the batch there: the statements before it still run
   * (in the caller's transaction, which then rolls back) and the batch answers with that error.
   */
  submit(connection: Connection): void {
    const c = (this.connection = connection as Connection & { parsedStatements: Record<string, string> });
    c.stream.cork();
    try {
      for (const [i, s] of this.statements.entries()) {
        const name = s.name ?? '';
        if (!name || c.parsedStatements[name] === undefined) {
          c.parse({ text: s.text, name } as never, false);
          if (name) {
            c.parsedStatements[name] = s.text;
            this.fresh.push(i);
          }
        }
        c.bind({ statement: name, values: s.values ?? [], valueMapper: prepareValue } as never, false);
        if (s.rows) c.describe({ type: 'P', name: '' }, false);
        c.execute({ portal: '', rows: 0 } as never, false);
      }
    } catch (e) {
      this.unbound = e as Error;
    } finally {
      c.sync();
      c.stream.uncork();
    }
  }

  handleRowDescription(msg: { fields: Field[] }): void {
    this.fields = msg.fields.map((f) => ({ name: f.name, parse: types.getTypeParser(f.dataTypeID, f.format as 'text') }));
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (!this.fields) return; // a statement whose rows are not wanted
    const row: Record<string, unknown> = {};
    this.fields.forEach((f, i) => {
      const raw = msg.fields[i];
      row[f.name] = raw === null ? null : f.parse(raw);
    });
    this.current.push(row);
  }

  handleCommandComplete(): void {
    this.rows.push(this.current);
    this.current = [];
    this.fields = undefined;
  }

  handleEmptyQuery(): void {
    this.handleCommandComplete();
  }

  /** pg passes on Postgres's first error (it skips to the Sync), or the connection's failure. */
  handleError(error: Error): void {
    // Postgres skipped what came after the failed statement: a name first parsed there does not exist. The failed
    // statement's own may (its Parse went through, its Bind or Execute failed) or may not.
    const failedAt = this.rows.length;
    for (const i of this.fresh) if (i >= failedAt) delete this.connection?.parsedStatements[this.statements[i].name!];
    this.answer({ rows: this.rows, error, unsurePrepared: this.fresh.includes(failedAt) });
  }

  handleReadyForQuery(): void {
    this.answer({ rows: this.rows, error: this.unbound });
  }

  private answer(answer: BatchAnswer): void {
    if (this.answered) return;
    this.answered = true;
    this.done(answer);
  }
}

/** Runs `statements` on `client` as one `StatementBatch` (behind what it is running, as pg queues queries). */
export function runBatch(client: PoolClient, statements: Statement[]): Promise<BatchAnswer> {
  return new Promise((resolve) => client.query(new StatementBatch(statements, resolve)));
}
