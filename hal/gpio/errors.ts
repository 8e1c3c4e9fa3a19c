/**
 * The GPIO HAL's typed errors (hook switch and LEDs), shaped like
 * `AudioError`: a stable `code`, `name` the class name, `cause` when wrapping.
 *
 * Codes: `ERR_GPIO_OPTIONS` (a spec out of range: pin, debounce, LED name, duplicate pin),
 * `ERR_GPIO_DRIVER` (unknown driver),
 * `ERR_GPIO_SYSFS` (no sysfs GPIO: the directory is missing),
 * `ERR_GPIO_CHIP` (no Raspberry Pi GPIO chip among the gpiochips),
 * `ERR_GPIO_PIN` (a BCM line the chip does not have),
 * `ERR_GPIO_ACCESS` (permission denied exporting or opening a line),
 * `ERR_GPIO_BUSY` (the line is held by a kernel driver or another program),
 * `ERR_GPIO_IO` (another failure reading, writing or watching a line),
 * `ERR_GPIO_UNAVAILABLE` (onoff or its epoll binding cannot be loaded),
 * `ERR_GPIO_LED` (an LED state that is not off, on, blink-slow or blink-fast).
 */
export class GpioError extends Error {
  readonly code: string;

  constructor(code: `ERR_GPIO_${string}`, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
