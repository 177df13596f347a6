import { DatabaseError } from 'pg';
import { MalformedMessageError } from '@orderflow/contracts';
import {
  ContradictsRecordsError,
  IdempotencyKeyReusedError,
  NotFoundError,
  PermanentError,
  UnavailableError,
  UnexpectedReplyError,
} from './errors';
import { classify, describeFailure, errorCode } from './failure';

const pg = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('classify', () => {
  it.each([
    ['a malformed message', new MalformedMessageError('bad'), 'permanent'],
    ['a PermanentError', new PermanentError('never'), 'permanent'],
    ['22001 string too long', pg('22001'), 'permanent'],
    ['23502 not null violation', pg('23502'), 'permanent'],
    ['23514 check violation', pg('23514'), 'permanent'],
    ['54000 index row too large', pg('54000', 'index row size 2720 exceeds btree version 4 maximum 2704'), 'permanent'],
    ['40001 serialization failure', pg('40001'), 'transient'],
    ['40P01 deadlock', pg('40P01'), 'transient'],
    ['55P03 lock timeout', pg('55P03'), 'transient'],
    ['57014 statement timeout', pg('57014'), 'transient'],
    ['57P03 cannot connect now', pg('57P03'), 'unavailable'],
    ['an open circuit', new UnavailableError('Postgres is unavailable'), 'unavailable'],
    ['53300 too many connections', pg('53300'), 'unavailable'],
    ['08006 connection failure', pg('08006'), 'unavailable'],
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 'unavailable'],
    ['a pool that cannot hand out a connection', new Error('timeout exceeded when trying to connect'), 'unavailable'],
    ['a connection that dropped', new Error('Connection terminated unexpectedly'), 'unavailable'],
    ['anything else', new Error('injected fault'), 'transient'],
  ])('%s → %s', (_, error, expected) => {
    expect(classify(error)).toBe(expected);
  });
});

describe('errorCode', () => {
  it.each([
    ['a malformed message', new MalformedMessageError('bad'), 'malformed'],
    ['a reused order id', new IdempotencyKeyReusedError('9d2f7f1e-0000-4000-8000-000000000000'), 'idempotency_key_reused'],
    ['a contradicting reply', new UnexpectedReplyError('payment.evt.charged of 0 USD'), 'unexpected_reply'],
    ['a command against the records', new ContradictsRecordsError('another customer'), 'contradicts_records'],
    ['another PermanentError', new PermanentError('never'), 'permanent'],
    ['a Postgres integrity violation', pg('23505'), 'permanent'],
    ['a lock timeout', pg('55P03'), 'transient'],
    ['an open circuit', new UnavailableError('Postgres is unavailable'), 'unavailable'],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'unavailable'],
    ['anything else', new Error('injected fault'), 'transient'],
  ])('%s → %s', (_, error, expected) => {
    expect(errorCode(error)).toBe(expected);
  });

  it("is the class's own code, whatever the message says", () => {
    expect(errorCode(new PermanentError('unexpected_reply: looks like one'))).toBe('permanent');
    expect(new NotFoundError('no order').code).toBe('not_found');
  });
});

describe('describeFailure', () => {
  it('names the error, its SQLSTATE and message', () => {
    const e = Object.assign(new Error('value too long for type character varying(3)'), { name: 'QueryFailedError', code: '22001' });
    expect(describeFailure(e)).toBe('QueryFailedError [22001]: value too long for type character varying(3)');
    expect(describeFailure(new PermanentError('no saga'))).toBe('PermanentError: no saga');
  });

  it('names pg\'s own DatabaseError by its class, not by its protocol message\'s name ("error")', () => {
    const e = Object.assign(new DatabaseError('deadlock detected', 0, 'error'), { code: '40P01' });
    expect(describeFailure(e)).toBe('DatabaseError [40P01]: deadlock detected');
  });
});
