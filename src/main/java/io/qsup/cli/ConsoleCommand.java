package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code qsup console NAME}: attach the terminal to a VM's serial console.
 *
 * <p>On a terminal, input goes raw to the guest and {@code Ctrl-]} detaches; the terminal settings are saved before and
 * restored after, also when the JVM is interrupted. QEMU serves one client per console socket: a second viewer waits
 * until the first detaches, and the first is not disturbed.
 */
@Command(name = "console", mixinStandardHelpOptions = true,
        description = {"Attach to a VM's serial console. Ctrl-] detaches. The serial log is written whether or not a",
            "viewer is attached (see 'qsup logs NAME --serial'). Only one viewer is connected at a time: a second",
            "one waits, silently, until the first detaches."},
        footer = {"", "Examples:", "  qsup console web1", "  echo poweroff | qsup console web1   (without a terminal: send and detach at EOF)"})
final class ConsoleCommand implements Callable<Integer> {
    static final int DETACH = 0x1d;
    private static final String DETACHED = "detached";
    private static final String CLOSED = "closed";

    @Mixin DaemonOptions daemon;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME", description = "The VM.")
    String name;

    @Override
    public Integer call() throws Exception {
        Path socket;
        try (DaemonClient client = daemon.connect()) {
            JsonNode vm = client.call("query-vm", Json.object().put("name", name));
            if (!vm.path("state").asText().matches("running|paused|stopping|orphaned")) {
                throw new CliException(ExitCodes.ERROR, name + " is " + vm.path("state").asText()
                        + "; start it first with 'qsup start " + name + "'");
            }
            socket = Path.of(vm.path("console-socket").asText());
        }
        PrintWriter err = spec.commandLine().getErr();
        boolean tty = Table.isTerminal();
        try (AFUNIXSocket sock = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(socket.toFile()))) {
            if (tty) {
                err.print("Connected to " + name + "'s console. Press Ctrl-] to detach.\r\n");
                err.flush();
            }
            String ended;
            try (TerminalMode raw = tty ? TerminalMode.raw() : TerminalMode.none()) {
                // Whichever side ends first ends the session: a detach (or the end of piped input), or QEMU closing
                // the console because the VM powered off. Platform threads: junixsocket reads misbehave on virtual
                // threads.
                CompletableFuture<String> end = new CompletableFuture<>();
                Thread pump = Thread.ofPlatform().daemon(true).name("console-out " + name).start(() -> {
                    copyOut(sock);
                    end.complete(CLOSED);
                });
                Thread.ofPlatform().daemon(true).name("console-in " + name).start(() -> {
                    try {
                        copyIn(System.in, sock.getOutputStream(), tty);
                        end.complete(DETACHED);
                    } catch (IOException e) {
                        end.complete(CLOSED); // writing to a console QEMU has closed
                    }
                });
                ended = end.join();
                if (ended.equals(DETACHED) && !tty) {
                    // Give the guest a moment to answer what was piped in before detaching.
                    pump.join(1000);
                }
            }
            if (tty) {
                err.println();
                err.println(ended.equals(DETACHED) ? "Detached from " + name + "."
                        : name + "'s console was closed by QEMU: the VM stopped ('qsup status " + name + "' tells why).");
            }
        } catch (IOException e) {
            throw new CliException(ExitCodes.ERROR, "cannot attach to " + name + "'s console at " + socket + ": "
                    + e.getMessage());
        }
        return ExitCodes.OK;
    }

    private static void copyIn(InputStream in, OutputStream out, boolean tty) throws IOException {
        byte[] buf = new byte[1024];
        int n;
        while ((n = in.read(buf)) > 0) {
            int end = n;
            boolean detach = false;
            if (tty) {
                for (int i = 0; i < n; i++) {
                    if (buf[i] == DETACH) {
                        end = i;
                        detach = true;
                        break;
                    }
                }
            }
            out.write(buf, 0, end);
            out.flush();
            if (detach) {
                return;
            }
        }
    }

    private static void copyOut(AFUNIXSocket sock) {
        byte[] buf = new byte[4096];
        try {
            InputStream in = sock.getInputStream();
            int n;
            while ((n = in.read(buf)) > 0) {
                System.out.write(buf, 0, n);
                System.out.flush();
            }
        } catch (IOException e) {
            // the socket closes when we detach
        }
    }

    /** Puts the controlling terminal into raw mode and restores it on close or JVM shutdown. */
    static final class TerminalMode implements AutoCloseable {
        private final String saved;
        private final Thread restoreHook;

        private TerminalMode(String saved) {
            this.saved = saved;
            this.restoreHook = saved == null ? null : new Thread(this::restore, "console-restore");
            if (restoreHook != null) {
                Runtime.getRuntime().addShutdownHook(restoreHook);
            }
        }

        static TerminalMode none() {
            return new TerminalMode(null);
        }

        static TerminalMode raw() throws IOException, InterruptedException {
            String saved = stty("-g").trim();
            stty("raw", "-echo");
            return new TerminalMode(saved);
        }

        /** Runs stty on the controlling terminal (stdin) and returns what it printed. */
        static String stty(String... args) throws IOException, InterruptedException {
            String[] cmd = new String[args.length + 1];
            cmd[0] = "stty";
            System.arraycopy(args, 0, cmd, 1, args.length);
            Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.INHERIT)
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.waitFor() != 0) {
                throw new IOException("stty " + String.join(" ", args) + " failed");
            }
            return out;
        }

        private synchronized void restore() {
            if (saved == null) {
                return;
            }
            try {
                stty(saved);
            } catch (IOException e) {
                System.err.println("qsup: could not restore the terminal; run 'stty sane'");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        public void close() {
            restore();
            if (restoreHook != null) {
                try {
                    Runtime.getRuntime().removeShutdownHook(restoreHook);
                } catch (IllegalStateException e) {
                    // already shutting down: the hook runs anyway
                }
            }
        }
    }
}
