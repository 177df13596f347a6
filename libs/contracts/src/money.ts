/** Digits after the decimal point of a currency's minor unit (ISO 4217 exponent: USD 2, JPY 0, KWD 3), from `Intl`. */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2; // not a currency Intl knows: the common case
  }
}

/** An amount in minor units as people read it: `formatMoney(1250, 'USD')` → `12.50 USD`, `formatMoney(1250, 'JPY')` → `1250 JPY`. */
export function formatMoney(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
}
