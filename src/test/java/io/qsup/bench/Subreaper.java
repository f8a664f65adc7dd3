package io.qsup.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A child subreaper for the libvirt variant: libvirtd daemonizes each QEMU, and the orphan would otherwise go to PID 1,
 * which on this machine reaps 1.5 to 2 s late. util-linux has no option that sets {@code PR_SET_CHILD_SUBREAPER}
 * ({@code setpriv} and {@code unshare} do not), so a tiny C helper is compiled with gcc at run time: it sets the flag,
 * runs each line it reads on stdin with {@code /bin/sh -c}, answers with that child's pid, reaps every child and orphan
 * at once, and exits when its stdin closes. It lives for the whole run, so that a restarted libvirtd and the QEMUs of
 * the one before stay under it.
 *
 * <p>Not thread-safe: one thread drives it.
 */
final class Subreaper implements AutoCloseable {
    private static final String SOURCE = """
            /* A child subreaper: runs each line of stdin with /bin/sh -c, prints the child's pid, reaps every child
               and every orphan re-parented here at once, and exits when stdin closes. */
            #define _GNU_SOURCE
            #include <errno.h>
            #include <signal.h>
            #include <stdio.h>
            #include <string.h>
            #include <sys/prctl.h>
            #include <sys/wait.h>
            #include <unistd.h>

            static void reap(int sig) {
                (void) sig;
                int saved = errno;
                while (waitpid(-1, NULL, WNOHANG) > 0) {
                }
                errno = saved;
            }

            int main(void) {
                if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
                    perror("prctl(PR_SET_CHILD_SUBREAPER)");
                    return 1;
                }
                struct sigaction sa;
                memset(&sa, 0, sizeof sa);
                sa.sa_handler = reap;
                sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
                sigaction(SIGCHLD, &sa, NULL);
                char line[16384];
                while (fgets(line, sizeof line, stdin) != NULL) {
                    line[strcspn(line, "\\n")] = '\\0';
                    pid_t pid = fork();
                    if (pid == 0) {
                        sa.sa_handler = SIG_DFL;
                        sigaction(SIGCHLD, &sa, NULL);
                        setsid();
                        execl("/bin/sh", "sh", "-c", line, (char *) NULL);
                        _exit(127);
                    }
                    printf("%d\\n", (int) pid);
                    fflush(stdout);
                }
                return 0;
            }
            """;

    private final Process helper;
    private final Writer in;
    private final BufferedReader out;

    private Subreaper(Process helper) {
        this.helper = helper;
        this.in = helper.outputWriter(StandardCharsets.UTF_8);
        this.out = new BufferedReader(new InputStreamReader(helper.getInputStream(), StandardCharsets.UTF_8));
    }

    /** Compiles the helper into {@code dir} and starts it. */
    static Subreaper start(Path dir) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        Path src = dir.resolve("subreaper.c");
        Path bin = dir.resolve("subreaper");
        Files.writeString(src, SOURCE);
        Process gcc = new ProcessBuilder("gcc", "-O2", "-Wall", "-o", bin.toString(), src.toString())
                .redirectErrorStream(true).start();
        String log = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!gcc.waitFor(60, TimeUnit.SECONDS) || gcc.exitValue() != 0) {
            throw new IOException("gcc could not build the subreaper helper (install gcc: apt-get install gcc): " + log);
        }
        Process p = new ProcessBuilder(List.of(bin.toString()))
                .redirectError(ProcessBuilder.Redirect.appendTo(dir.resolve("subreaper.err").toFile())).start();
        return new Subreaper(p);
    }

    /** Runs {@code shellLine} under the subreaper; returns its pid (the pid of what the line {@code exec}s). */
    long spawn(String shellLine) throws IOException {
        if (shellLine.contains("\n")) {
            throw new IllegalArgumentException("one line only: " + shellLine);
        }
        in.write(shellLine + "\n");
        in.flush();
        String pid = out.readLine();
        if (pid == null) {
            throw new IOException("the subreaper helper exited; see subreaper.err beside it");
        }
        return Long.parseLong(pid.trim());
    }

    long pid() {
        return helper.pid();
    }

    /** Closes its stdin: it exits; anything still running under it goes to PID 1. */
    @Override
    public void close() throws IOException, InterruptedException {
        in.close();
        if (!helper.waitFor(10, TimeUnit.SECONDS)) {
            helper.destroyForcibly();
        }
    }
}
