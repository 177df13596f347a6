import { ArgumentsHost, Catch, RpcExceptionFilter } from '@nestjs/common';
import { Observable, throwError } from 'rxjs';

/**
 * Nest's default RPC exception handler turns any error that is not an `RpcException` into `{status, message}`,
 * which would lose what our consume loop decides retries by (the error's class and SQL state: permanent →
 * dead letter, unavailable → hold, transient → nak with backoff). This catch-all filter, put on every handler by
 * `@MessageController()`, hands the original error on; a handler's own filters still run first.
 */
@Catch()
export class ErrorPassthroughFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => exception);
  }
}
