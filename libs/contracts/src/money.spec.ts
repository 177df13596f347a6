import { formatMoney, minorDigits } from './money';

describe('money', () => {
  it('formats minor units with the currency’s own ISO 4217 exponent', () => {
    expect(formatMoney(1250, 'USD')).toBe('12.50 USD');
    expect(formatMoney(1250, 'JPY')).toBe('1250 JPY');
    expect(formatMoney(1250, 'KWD')).toBe('1.250 KWD');
    expect(formatMoney(-5, 'EUR')).toBe('-0.05 EUR');
  });

  it('falls back to two digits for a code Intl does not know', () => {
    expect(minorDigits('ZZZ')).toBe(2);
  });
});
