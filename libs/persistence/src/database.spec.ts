import { types } from 'pg';
import { parseBigintAsNumber } from './database';

describe('bigint columns', () => {
  it('read as exact numbers, and refuse what a number cannot hold exactly', () => {
    parseBigintAsNumber();
    const parse = types.getTypeParser(types.builtins.INT8, 'text');
    expect(parse('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parse('-42')).toBe(-42);
    expect(() => parse('9007199254740993')).toThrow(/past 2\^53 - 1/);
  });
});
