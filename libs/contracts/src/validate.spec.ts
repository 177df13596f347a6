import { MalformedMessageError, OrderCreated, parseMessage } from './index';

const valid = {
  orderId: '5b0c1a52-6f0e-4a55-9a53-0d7d1c7c0001',
  customerId: 'alice',
  currency: 'USD',
  items: [{ sku: 'BOOK', quantity: 2, unitPrice: 1250 }],
};

describe('parseMessage', () => {
  it('returns a validated instance of the contract class', () => {
    const o = parseMessage(OrderCreated, Buffer.from(JSON.stringify(valid)));
    expect(o).toBeInstanceOf(OrderCreated);
    expect(o).toEqual(valid);
  });

  it.each([
    ['bad JSON', '{"orderId": ', /body is not valid JSON/],
    ['an array', '[]', /must be a JSON object, got an array/],
    ['null', 'null', /must be a JSON object, got null/],
    ['a number', '42', /must be a JSON object, got a number/],
    [
      'a customer id of 129 characters',
      JSON.stringify({ ...valid, customerId: 'c'.repeat(129) }),
      /customerId must be shorter than or equal to 128 characters/,
    ],
    [
      'a SKU of 65 characters',
      JSON.stringify({ ...valid, items: [{ sku: 'S'.repeat(65), quantity: 1, unitPrice: 1 }] }),
      /items\.0\.sku must be shorter than or equal to 64 characters/,
    ],
    [
      '101 order lines',
      JSON.stringify({ ...valid, items: Array.from({ length: 101 }, () => ({ sku: 'A', quantity: 1, unitPrice: 1 })) }),
      /items must contain no more than 100 elements/,
    ],
    ['a missing field', JSON.stringify({ ...valid, customerId: undefined }), /customerId/],
    [
      'quantity 0',
      JSON.stringify({ ...valid, items: [{ sku: 'BOOK', quantity: 0, unitPrice: 1 }] }),
      /items\.0\.quantity must not be less than 1/,
    ],
    [
      'a fractional price',
      JSON.stringify({ ...valid, items: [{ sku: 'BOOK', quantity: 1, unitPrice: 12.5 }] }),
      /unitPrice must be an integer/,
    ],
    ['a bad currency', JSON.stringify({ ...valid, currency: 'usd' }), /ISO 4217/],
    ['no items', JSON.stringify({ ...valid, items: [] }), /items must contain at least 1/],
    ['an unknown field', JSON.stringify({ ...valid, priority: 'high' }), /property priority should not exist/],
    ['an empty customer id', JSON.stringify({ ...valid, customerId: '' }), /customerId should not be empty/],
    [
      'a total above 2^53 − 1 minor units',
      JSON.stringify({ ...valid, items: [{ sku: 'GOLD', quantity: 1_000_000, unitPrice: 2 ** 40 }] }),
      /items total .* must not exceed 9007199254740991 minor units/,
    ],
  ])('rejects %s with a MalformedMessageError naming the problem', (_, body, message) => {
    expect(() => parseMessage(OrderCreated, body)).toThrow(MalformedMessageError);
    expect(() => parseMessage(OrderCreated, body)).toThrow(message);
  });
});

describe('validation messages', () => {
  const message = (body: object) => {
    try {
      parseMessage(OrderCreated, Buffer.from(JSON.stringify(body)));
    } catch (e) {
      return (e as Error).message.replace(/^invalid OrderCreated: /, '');
    }
    throw new Error('valid');
  };

  it.each([
    ['a missing field is required', { ...valid, currency: undefined }, 'currency is required'],
    [
      'a wrong type names what was expected and given',
      { ...valid, items: [{ sku: 'B', quantity: '2', unitPrice: 1 }] },
      'items.0.quantity: expected integer, got string',
    ],
    ['a null', { ...valid, customerId: null }, 'customerId: expected string, got null'],
    ['not an array', { ...valid, items: 'BOOK' }, 'items: expected array, got string'],
    ['a bad format, once', { ...valid, currency: 'usd' }, 'currency must be an upper-case ISO 4217 code such as USD'],
    ['every field, one message each', { customerId: 'a' }, 'currency is required; items is required; orderId is required'],
  ])('%s', (_, body, expected) => {
    expect(message(body)).toBe(expected);
  });
});
