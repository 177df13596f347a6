import { parseExposition, total } from './exposition';
import { quantile } from './snapshot';

describe('Prometheus text exposition', () => {
  const text = [
    '# HELP orderflow_sagas_finished_total x',
    '# TYPE orderflow_sagas_finished_total counter',
    'orderflow_sagas_finished_total{type="PlaceOrder",status="COMPLETED",reason="",app="order"} 3',
    'orderflow_sagas_finished_total{type="PlaceOrder",status="CANCELLED",reason="insufficient_funds",app="order"} 2',
    'orderflow_saga_duration_seconds_bucket{le="0.1",type="PlaceOrder",app="order"} 1',
    'orderflow_saga_duration_seconds_bucket{le="0.2",type="PlaceOrder",app="order"} 3',
    'orderflow_saga_duration_seconds_bucket{le="+Inf",type="PlaceOrder",app="order"} 4',
    'odd{msg="a \\"quoted\\" \\\\ value"} 1.5e3 1700000000000',
  ].join('\n');

  it('reads every sample with its labels, histogram series included', () => {
    const s = parseExposition(text);
    expect(s).toHaveLength(6);
    expect(total(s, 'orderflow_sagas_finished_total')).toBe(5);
    expect(total(s, 'orderflow_sagas_finished_total', { status: 'CANCELLED' })).toBe(2);
    expect(s.find((x) => x.name === 'orderflow_saga_duration_seconds_bucket' && x.labels.le === '+Inf')?.value).toBe(4);
    expect(s[5]).toEqual({ name: 'odd', labels: { msg: 'a "quoted" \\ value' }, value: 1500 });
  });

  it('interpolates a quantile inside its bucket, as histogram_quantile does', () => {
    const buckets = new Map([
      [0.1, 1],
      [0.2, 3],
      [Infinity, 4],
    ]);
    expect(quantile(0.5, buckets)).toBeCloseTo(0.15);
    expect(quantile(0.25, buckets)).toBeCloseTo(0.1);
    expect(quantile(0.99, buckets)).toBe(0.2);
    expect(quantile(0.5, new Map())).toBeNull();
  });
});
