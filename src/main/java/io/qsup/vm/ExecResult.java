package io.qsup.vm;

/**
 * How a command run in the guest through its agent ended ({@code guest-exec}, {@code guest-exec-status}).
 *
 * @param exitCode  the command's exit code, or -1 when it did not exit by itself
 * @param signal    the signal that ended it, or -1
 * @param stdout    what it wrote to stdout (the agent returns it once the command ended)
 * @param stderr    what it wrote to stderr
 * @param timedOut  true when the deadline passed before the command ended; it may still run in the guest
 * @param truncated true when the agent cut the output short (its own limit)
 */
public record ExecResult(int exitCode, int signal, byte[] stdout, byte[] stderr, boolean timedOut, boolean truncated) {}
