package io.qsup.daemon;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * POSIX signal handling for qsupd through {@code sun.misc.Signal} (module jdk.unsupported, exported and stable in
 * every JDK since 9; the JDK has no public API for SIGHUP). Handlers run on a JVM-made thread; each hands its work to
 * a named virtual thread and returns at once.
 *
 * <p>HotSpot does not install a handler for SIGHUP, SIGINT or SIGTERM when the process inherited that signal as
 * ignored ({@code nohup} ignores SIGHUP, a shell's {@code &} ignores SIGINT), and says nothing about it. The launcher
 * {@code bin/qsupd} therefore resets SIGHUP before starting the JVM; here a signal that is still ignored after
 * installing is reported in the log, so that a reload by signal never silently does nothing.
 */
final class Signals {
    private static final Logger log = LoggerFactory.getLogger(Signals.class);
    private static final Path STATUS = Path.of("/proc/self/status");

    private Signals() {}

    /** Runs {@code action} on a virtual thread {@code signal-NAME} whenever {@code name} (HUP, TERM, INT) arrives. */
    static void on(String name, Runnable action) {
        sun.misc.Signal signal;
        try {
            signal = new sun.misc.Signal(name);
            sun.misc.Signal.handle(signal, sig -> Thread.ofVirtual().name("signal-" + name)
                    .start(() -> {
                        log.info("received SIG{}", name);
                        action.run();
                    }));
        } catch (IllegalArgumentException e) {
            log.warn("cannot handle SIG{}: {}", name, e.getMessage());
            return;
        }
        if (!isIgnored(signal.getNumber())) {
            return;
        }
        String what = "SIG" + name + " is ignored by this process, as inherited from what started it, and the JVM"
                + " installs no handler for an ignored signal: qsupd will not act on SIG" + name + "; ";
        switch (name) {
            case "HUP" -> log.warn("{}reload with 'qsup reload' instead, or start qsupd through bin/qsupd, which resets"
                    + " SIGHUP (nohup ignores it)", what);
            // a shell ignores SIGINT in the jobs it starts with &: expected, and SIGTERM still works
            case "INT" -> log.info("{}stop qsupd with SIGTERM", what);
            default -> log.warn("{}start qsupd with SIG{} at its default disposition", what, name);
        }
    }

    /** Whether signal {@code number} is ignored, per the SigIgn mask in /proc/self/status; false when unknown. */
    static boolean isIgnored(int number) {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith("SigIgn:")) {
                    return new BigInteger(line.substring("SigIgn:".length()).trim(), 16).testBit(number - 1);
                }
            }
        } catch (IOException | NumberFormatException e) {
            log.debug("cannot read the ignored signals from {}: {}", STATUS, e.toString());
        }
        return false;
    }
}
