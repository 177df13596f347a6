/** Thrown when the environment does not describe a usable configuration; the message names every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
