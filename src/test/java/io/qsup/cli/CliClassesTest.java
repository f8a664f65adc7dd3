package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.VmState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The CLI's everyday verbs (list, status, the lifecycle verbs), each in a JVM of its own, load neither logback nor
 * databind's {@code ObjectMapper}: their start-up stays free of logback.xml's parsing and of the first mapper's date
 * and locale set-up (about 60 ms), while their output is what it was. Nor do they make classes at run time for a
 * pattern switch or a string concatenation of ours (about 4 ms for the first), nor start a virtual thread, whose
 * scheduler a short-lived process would set up for that thread alone (about 9 ms). {@code qsup qmp}, whose command-line syntax builds a mapper, and a {@code qsup list}
 * asked for debug logging show that the check sees both.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CliClassesTest {
    private static final List<String> HEAVY = List.of("com.fasterxml.jackson.databind.ObjectMapper ",
            "ch.qos.logback.");
    /**
     * Classes made at run time for a pattern switch or a string concatenation of our code, at its first run (the
     * JDK's class-file API set up, then each class generated and verified).
     */
    private static final List<String> MADE = List.of("$$TypeSwitch/", "$$StringConcat/",
            // the first virtual thread, which sets up the JDK's scheduler and a carrier thread (class+init's line)
            "Initializing 'java/lang/VirtualThread' ");

    private SupervisorFixture fixture;
    private InProcessDaemon daemon;

    @BeforeAll
    void startDaemon() throws Exception {
        fixture = new SupervisorFixture(2);
        fixture.writeVm("alpha", "stop-timeout: 20s");
        fixture.writeVm("beta", "autostart: false");
        daemon = InProcessDaemon.start(fixture);
        daemon.supervisor().controller("alpha").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));
    }

    @AfterAll
    void stopDaemon() throws Exception {
        if (daemon != null) {
            daemon.close();
        }
    }

    @Test
    void everydayVerbsLoadNoLogbackAndNoObjectMapper() throws Exception {
        String socket = daemon.socket().toString();
        for (List<String> verb : List.of(List.of("list"), List.of("list", "--json"), List.of("list", "--names"),
                List.of("status", "alpha"), List.of("status", "alpha", "--json"), List.of("status", "beta"),
                List.of("--version"), List.of("stop", "beta"), List.of("reset-failed", "--json", "beta"))) {
            List<String> args = new ArrayList<>(List.of("--socket", socket));
            args.addAll(verb);
            Run r = run(args);
            assertThat(r.code).as(verb + ": " + r.out).isZero();
            assertThat(r.out).as(verb.toString()).containsAnyOf("alpha", "beta", "qsup");
            if (verb.contains("alpha")) {
                assertThat(r.out).as(verb.toString()).contains("running");
            }
            assertThat(r.heavy).as(verb + " loaded").isEmpty();
        }
    }

    /** The plain forms run without picocli in a process of their own (FastVerbs): same output, errors and codes. */
    @Test
    void aProcessPrintsWhatThePicocliPathPrints() throws Exception {
        String socket = daemon.socket().toString();
        for (List<String> verb : List.of(List.of("list", "--names"), List.of("status", "beta"),
                List.of("--json", "status", "beta"), List.of("status", "nosuch"), List.of("status", "nosuch", "--json"),
                List.of("list", "--socket", socket + ".absent"), List.of("stop", "beta"),
                List.of("--json", "kill", "beta", "nosuch"), List.of("kill", "beta", "nosuch"),
                List.of("reset-failed", "--no-wait", "beta"), List.of("pause", "beta"),
                List.of("start", "beta", "--socket", socket + ".absent"))) {
            List<String> args = new ArrayList<>(List.of("--socket", socket));
            args.addAll(verb);
            if (verb.contains("--socket")) {
                args = verb; // the verb's own --socket: an absent daemon
            }
            Run process = run(args);
            CliRun picocli = CliRun.qsupRaw(args.toArray(String[]::new));
            assertThat(process.code).as(verb.toString()).isEqualTo(picocli.code());
            assertThat(process.out).as(verb.toString()).isEqualTo(picocli.out() + picocli.err());
        }
        for (String version : List.of("--version", "-V")) {
            Run process = run(List.of(version));
            CliRun picocli = CliRun.qsupRaw(version);
            assertThat(picocli.out()).startsWith("qsup ");
            assertThat(process.code).as(version).isEqualTo(picocli.code()).isZero();
            assertThat(process.out).as(version).isEqualTo(picocli.out() + picocli.err());
        }
    }

    @Test
    void theCheckSeesAMapperAndLogbackWhereTheyAreLoaded() throws Exception {
        Path absent = fixture.base.resolve("absent-qmp.sock");
        Run qmp = run(List.of("qmp", "--socket", absent.toString(), "query-status"));
        assertThat(qmp.code).as(qmp.out).isNotZero();
        assertThat(qmp.out).contains(absent.toString());
        assertThat(qmp.heavy).anyMatch(l -> l.contains("databind.ObjectMapper"));
        Run debug = run(List.of("-Dqsup.logLevel=DEBUG"), List.of("--socket", daemon.socket().toString(), "list"));
        assertThat(debug.code).as(debug.out).isZero();
        assertThat(debug.heavy).anyMatch(l -> l.contains("ch.qos.logback."));
    }

    /**
     * A broken install (slf4j-api missing from the class path) makes the early connection's thread fail with an
     * Error: the verb must say so and exit, not wait for that connection for ever.
     */
    @Test
    void aClassMissingFromTheInstallEndsTheRunWithTheErrorInsteadOfAHang() throws Exception {
        String without = java.util.Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(e -> !Path.of(e).getFileName().toString().startsWith("slf4j-api"))
                .collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator));
        assertThat(without).as("the class path had slf4j-api").isNotEqualTo(System.getProperty("java.class.path"));
        for (List<String> verb : List.of(List.of("list"), List.of("kill", "beta"))) {
            List<String> args = new ArrayList<>(List.of("--socket", daemon.socket().toString()));
            args.addAll(verb);
            Run r = run(List.of(), args, without);
            assertThat(r.code).as(verb + ": " + r.out).isNotZero();
            assertThat(r.out).as(verb.toString()).contains("NoClassDefFoundError").contains("org/slf4j");
        }
    }

    private record Run(int code, String out, List<String> heavy) {}

    private Run run(List<String> args) throws Exception {
        return run(List.of(), args);
    }

    private Run run(List<String> jvmOptions, List<String> args) throws Exception {
        return run(jvmOptions, args, System.getProperty("java.class.path"));
    }

    private Run run(List<String> jvmOptions, List<String> args, String classPath) throws Exception {
        Path log = Files.createTempFile(fixture.base, "classes", ".log");
        Path out = Files.createTempFile(fixture.base, "out", ".txt");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xlog:class+load=info,class+init=info:file=" + log,
                "-cp", classPath));
        cmd.addAll(jvmOptions);
        cmd.add(QsupMain.class.getName());
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        try {
            assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("qsup " + args + " exits").isTrue();
        } finally {
            p.destroyForcibly();
        }
        List<String> heavy = Files.readAllLines(log).stream()
                .filter(l -> HEAVY.stream().anyMatch(h -> l.contains(" " + h)) || MADE.stream().anyMatch(l::contains))
                .limit(5).toList();
        return new Run(p.exitValue(), Files.readString(out), heavy);
    }
}
