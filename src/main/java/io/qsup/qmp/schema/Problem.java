package io.qsup.qmp.schema;

/**
 * One thing wrong with a command before it is sent, printed as {@code COMMAND: PATH: what} (for example
 * {@code blockdev-add: file.filename: missing}).
 *
 * @param path where in the arguments, dotted, with [i] for array elements; empty for the command itself
 */
public record Problem(String command, String path, String text) {
    @Override
    public String toString() {
        return command + ": " + (path.isEmpty() ? "" : path + ": ") + text;
    }
}
