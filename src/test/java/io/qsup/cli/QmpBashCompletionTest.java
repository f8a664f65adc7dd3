package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.TestQemu;
import io.qsup.testing.Tmux;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shipped bash completion ({@code completion/qsup.bash}) in a real interactive bash under tmux: Tab after
 * {@code qsup qmp --socket S} completes QMP command names, argument keys (also dotted ones) and enum values from the
 * schema cached by an earlier run on that socket.
 */
class QmpBashCompletionTest {
    private final Tmux tmux = new Tmux("bashcomp-test");
    private TestQemu qemu;

    @TempDir
    Path work;

    @BeforeEach
    void start() {
        qemu = TestQemu.start(work.resolve("qemu"), List.of());
    }

    @AfterEach
    void stop() throws Exception {
        tmux("kill-server");
        qemu.close();
    }

    @Test
    void tabCompletesCommandsKeysAndValuesFromTheCachedSchema() throws Exception {
        Path bin = Files.createDirectories(work.resolve("bin"));
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Path qsup = bin.resolve("qsup");
        Files.writeString(qsup, "#!/bin/sh\nexec '" + java + "' --enable-native-access=ALL-UNNAMED -cp '" + cp
                + "' io.qsup.cli.QsupMain \"$@\"\n");
        Files.setPosixFilePermissions(qsup, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path completion = Path.of(System.getProperty("qsup.projectDir", "."), "completion", "qsup.bash");

        tmux("new-session", "-d", "-s", "t", "-x", "220", "-y", "50", "bash --norc --noprofile -i");
        tmux("send-keys", "-t", "t", "PS1='$ '; export PATH='" + bin + "':$PATH XDG_CACHE_HOME='" + work.resolve("cache")
                + "'; source '" + completion + "'; clear", "Enter");
        awaitPane(p -> lastLine(p).equals("$"), "the prompt");
        String q = "qsup qmp --socket " + qemu.qmpSocket() + " ";

        // nothing cached yet: nothing offered
        tmux("send-keys", "-t", "t", q + "query-statu", "Tab");
        Thread.sleep(3000);
        assertThat(lastLine(pane())).isEqualTo("$ " + q + "query-statu");
        tmux("send-keys", "-t", "t", "C-u", "clear; " + q + "--compact query-status", "Enter");
        awaitPane(p -> p.contains("\"prelaunch\"") && lastLine(p).equals("$"), "a first run, which caches the schema");

        tmux("send-keys", "-t", "t", q + "query-statu", "Tab");
        awaitPane(p -> lastLine(p).equals("$ " + q + "query-status"), "the command name completed");
        tmux("send-keys", "-t", "t", "C-u", q + "block_resize no", "Tab");
        awaitPane(p -> lastLine(p).equals("$ " + q + "block_resize node-name="), "the argument key completed");
        tmux("send-keys", "-t", "t", "C-u", q + "blockdev-add driver=null-co detect-zeroes=un", "Tab");
        awaitPane(p -> lastLine(p).equals("$ " + q + "blockdev-add driver=null-co detect-zeroes=unmap"),
                "the enum value completed");
        tmux("send-keys", "-t", "t", "C-u", q + "blockdev-add driver=raw file.filen", "Tab");
        Thread.sleep(3000); // no filename before file's driver is known
        assertThat(lastLine(pane())).isEqualTo("$ " + q + "blockdev-add driver=raw file.filen");
        tmux("send-keys", "-t", "t", "C-u", q + "blockdev-add driver=raw file.driver=file file.filen", "Tab");
        awaitPane(p -> lastLine(p).equals("$ " + q + "blockdev-add driver=raw file.driver=file file.filename="),
                "a nested key of the variant file.driver picks");
        tmux("send-keys", "-t", "t", "C-u");
    }

    private static String lastLine(String pane) {
        List<String> lines = pane.lines().map(String::stripTrailing).filter(l -> !l.isEmpty()).toList();
        return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    }

    private String pane() throws Exception {
        // -J joins lines the terminal wrapped, so a long command line reads as one
        return tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-200");
    }

    private String awaitPane(Predicate<String> p, String what) throws Exception {
        return Tmux.await(() -> pane(), p, what);
    }

    private String tmux(String... args) throws IOException, InterruptedException {
        return tmux.run(args);
    }
}
