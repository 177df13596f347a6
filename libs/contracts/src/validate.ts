import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import type { ErrorCode } from './error-codes';

/** A body that can never be processed: bad JSON, failed validation, unknown type. Dead-lettered at once, never retried. */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError';
  readonly code: ErrorCode = 'malformed';
}

/** class-validator's type constraints: what each expects, and whether a value is of that kind at all. */
const TYPES: Record<string, { expected: string; is: (v: unknown) => boolean }> = {
  isInt: { expected: 'integer', is: (v) => typeof v === 'number' },
  isNumber: { expected: 'number', is: (v) => typeof v === 'number' },
  isString: { expected: 'string', is: (v) => typeof v === 'string' },
  isBoolean: { expected: 'boolean', is: (v) => typeof v === 'boolean' },
  isArray: { expected: 'array', is: Array.isArray },
  isObject: { expected: 'object', is: (v) => typeof v === 'object' && v !== null && !Array.isArray(v) },
  nestedValidation: { expected: 'object', is: (v) => typeof v === 'object' && v !== null },
  isUuid: { expected: 'string', is: (v) => typeof v === 'string' },
  isDateString: { expected: 'string', is: (v) => typeof v === 'string' },
};
const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/**
 * One message per failed field, in the manner of Temporal's and JSON Schema validators: "currency is required",
 * "quantity: expected integer, got string", else the first of class-validator's messages for it (a value out of range
 * or of the wrong format). Nested fields are named by path (`items.0.quantity`).
 */
function describe(errors: ValidationError[], path = ''): string[] {
  return errors.flatMap((e) => {
    const here = path ? `${path}.${e.property}` : e.property;
    const constraints = e.constraints ?? {};
    const names = Object.keys(constraints);
    let own: string | null = null;
    if (names.length && e.value === undefined && !('whitelistValidation' in constraints)) own = `${here} is required`;
    else {
      const type = names.map((n) => TYPES[n]).find((t) => t && !t.is(e.value));
      if (type) own = `${here}: expected ${type.expected}, got ${kindOf(e.value)}`;
      else if (names.length) {
        const m = constraints[names[0]];
        own = m.startsWith(e.property) ? `${path ? path + '.' : ''}${m}` : `${here}: ${m}`;
      }
    }
    return [...(own ? [own] : []), ...(own?.includes(': expected') ? [] : describe(e.children ?? [], here))];
  });
}

/**
 * Parses JSON bytes (or takes a plain object) into an instance of `type`, not yet validated (see `validateMessage`).
 * @throws MalformedMessageError when the bytes are not JSON or not a JSON object.
 */
export function decodeMessage<T extends object>(type: new () => T, body: Uint8Array | string | unknown): T {
  let plain: unknown = body;
  if (body instanceof Uint8Array || typeof body === 'string') {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    try {
      plain = JSON.parse(text);
    } catch (e) {
      throw new MalformedMessageError(`body is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    throw new MalformedMessageError(
      `body must be a JSON object, got ${plain === null ? 'null' : Array.isArray(plain) ? 'an array' : `a ${typeof plain}`}`,
    );
  }
  return plainToInstance(type, plain);
}

/** The instances `validateMessage` passed: validating one is done once, wherever it happens first. */
const validated = new WeakSet<object>();

/**
 * Validates a message instance against the class-validator rules of its own class. Unknown properties are rejected,
 * so a typo in a field name is an error, not a silent default. An instance already validated is not checked again.
 * @throws MalformedMessageError naming every failed field.
 */
export function validateMessage<T extends object>(instance: T): T {
  if (validated.has(instance)) return instance;
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length > 0) {
    throw new MalformedMessageError(`invalid ${instance.constructor.name}: ${describe(errors).join('; ')}`);
  }
  validated.add(instance);
  return instance;
}

/** True once `validateMessage` passed `value` (it is not changed afterwards: handlers get it read-only by convention). */
export const isValidated = (value: unknown): boolean => typeof value === 'object' && value !== null && validated.has(value);

/**
 * Parses JSON bytes (or takes a plain object) into an instance of `type` and validates it.
 * @throws MalformedMessageError naming every failed field.
 */
export function parseMessage<T extends object>(type: new () => T, body: Uint8Array | string | unknown): T {
  return validateMessage(decodeMessage(type, body));
}
