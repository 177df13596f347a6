import { BaseRpcContext } from '@nestjs/microservices';

/** What a query handler (`@MessagePattern(Subjects.QueryX)`, a NATS service endpoint) gets with `@Ctx()`. */
export class QueryContext extends BaseRpcContext<[string]> {
  constructor(subject: string) {
    super([subject]);
  }

  /** The logical query subject. */
  get subject(): string {
    return this.args[0];
  }
}
