import { MalformedMessageError } from '@orderflow/contracts';
import { PermanentError, UnavailableError } from './errors';
import { classify, describeFailure } from './failure';

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

describe('describeFailure', () => {
  it('names the error, its SQLSTATE and message', () => {
    const e = Object.assign(new Error('value too long for type character varying(3)'), { name: 'QueryFailedError', code: '22001' });
    expect(describeFailure(e)).toBe('QueryFailedError [22001]: value too long for type character varying(3)');
    expect(describeFailure(new PermanentError('no saga'))).toBe('PermanentError: no saga');
  });
});
