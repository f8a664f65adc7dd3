package io.qsup.cli;

import io.qsup.daemon.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code qsup} command line client; each verb lives in its own class. */
@Command(
        name = "qsup",
        mixinStandardHelpOptions = true,
        versionProvider = QsupMain.VersionProvider.class,
        description = "Control QEMU virtual machines supervised by qsupd, or talk QMP directly.",
        subcommands = {
            CommandLine.HelpCommand.class,
            QmpCommand.class,
            ValidateCommand.class,
            ArgvCommand.class,
        })
public final class QsupMain implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code; used by tests to avoid System.exit. */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new QsupMain());
        cl.setExitCodeExceptionMapper(ExitCodes::forException);
        return cl;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing verb; see 'qsup --help'");
    }

    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"qsup " + Version.get()};
        }
    }
}
