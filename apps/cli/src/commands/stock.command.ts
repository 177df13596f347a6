import { Command } from 'commander';
import { StockLevel, Subjects } from '@orderflow/contracts';
import { CliFailure } from '../cli.errors';
import { wholeNumber, withClient } from '../context';
import { print } from '../output';

const show = (json: boolean, s: StockLevel) =>
  print(json, s, ['sku', 'available', 'reserved', 'sold'], [[s.sku, s.available, s.reserved, s.sold]]);

export function stockCommand(): Command {
  const stock = new Command('stock').description('stock per SKU (owned by the inventory service)');
  stock
    .command('add')
    .description('add units of a SKU (sends inventory.cmd.restock and waits for the new level)')
    .argument('<sku>', 'the SKU')
    .argument('<qty>', 'units to add', wholeNumber('QTY', 1, 1_000_000_000))
    .option('--json', 'print JSON')
    .action(async (sku: string, qty: number, opts: { json?: boolean }, cmd: Command) => {
      const restocked = await withClient(cmd, (c) =>
        c.command<StockLevel>(Subjects.InventoryRestock, { sku, quantity: qty }, Subjects.InventoryRestocked, {
          check: `orderflow stock show ${sku}`,
        }),
      );
      show(!!opts.json, restocked.body);
    });
  stock
    .command('show')
    .description('available, reserved and sold units of a SKU')
    .argument('<sku>', 'the SKU')
    .option('--json', 'print JSON')
    .action(async (sku: string, opts: { json?: boolean }, cmd: Command) => {
      const level = await withClient(cmd, (c) => c.query<StockLevel>(Subjects.QueryStock, { sku }));
      if (!level) throw new CliFailure(`unknown SKU ${sku}`);
      show(!!opts.json, level);
    });
  return stock;
}
