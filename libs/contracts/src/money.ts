// Building an Intl.NumberFormat costs about 0.1 ms: once per currency, not once per message.
const digitsByCurrency = new Map<string, number>();

/** Digits after the decimal point of a currency's minor unit (ISO 4217 exponent: USD 2, JPY 0, KWD 3), from `Intl`. */
export function minorDigits(currency: string): number {
  let digits = digitsByCurrency.get(currency);
  if (digits !== undefined) return digits;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2; // not a well-formed code: the common case, not remembered (well-formed codes are at most 26³)
  }
  digitsByCurrency.set(currency, digits);
  return digits;
}

/** An amount in minor units as people read it: `formatMoney(1250, 'USD')` → `12.50 USD`, `formatMoney(1250, 'JPY')` → `1250 JPY`. */
export function formatMoney(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
}
