package io.qsup.cli;

/** The documented exit codes of {@code qsup}; scripts rely on them, so they never change meaning. */
public final class ExitCodes {
    /** The verb did what was asked. */
    public static final int OK = 0;
    /** The verb failed: a QMP error, a VM that did not reach the asked state, invalid definitions. */
    public static final int ERROR = 1;
    /** The command line itself is wrong. */
    public static final int USAGE = 2;
    /** A named VM or file does not exist. */
    public static final int NOT_FOUND = 3;
    /** The daemon or QMP socket could not be reached. */
    public static final int UNREACHABLE = 4;

    private ExitCodes() {}

    static int forException(Throwable t) {
        if (t instanceof CliException ce) {
            return ce.exitCode();
        }
        return t instanceof picocli.CommandLine.ParameterException ? USAGE : ERROR;
    }
}
