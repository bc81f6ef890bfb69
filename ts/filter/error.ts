/** The error of a filter expression that cannot be compiled: `EINVAL`, naming the column. */
import { EbpfError, type ErrorCode } from '../errors.js'

export class FilterError extends EbpfError {
  /** 1-based column of the token the error is about. */
  readonly column: number
  constructor(message: string, column: number, code: ErrorCode = 'EINVAL') {
    super(code, `column ${column}: ${message}`)
    this.column = column
  }
}
