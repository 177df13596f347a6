import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';

/** A body that can never be processed: bad JSON, failed validation, unknown type. Dead-lettered at once, never retried. */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError';
}

function describe(errors: ValidationError[], path = ''): string[] {
  return errors.flatMap((e) => {
    const here = path ? `${path}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {});
    return [
      ...own.map((m) => (m.startsWith(e.property) ? `${path ? path + '.' : ''}${m}` : `${here}: ${m}`)),
      ...describe(e.children ?? [], here),
    ];
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
