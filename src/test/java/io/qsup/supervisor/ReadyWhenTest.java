package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.testing.GuestConsole;
import io.qsup.vm.VmController;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.function.Predicate;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** ready-when and depends-on against the real test guest: serial, tcp through a hostfwd, and a missed timeout. */
class ReadyWhenTest {
    private static final Duration BOOT = Duration.ofSeconds(90);
    private SupervisorFixture fx;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    private OptionalInt index(Predicate<VmEvent> p) {
        List<VmEvent> all = List.copyOf(fx.events);
        return IntStream.range(0, all.size()).filter(i -> p.test(all.get(i))).findFirst();
    }

    private static Predicate<VmEvent> starting(String vm) {
        return e -> e.vm().equals(vm) && e instanceof VmEvent.StateChange s && s.to() == VmState.STARTING;
    }

    private static Predicate<VmEvent> readyEvent(String vm) {
        return e -> e.vm().equals(vm) && e instanceof VmEvent.Ready;
    }

    @Test
    void aDependentStartsOnlyAfterItsDependencyIsReadyAndOneThatNeverIsHoldsItsDependentBack() throws Exception {
        fx.writeVm("a", "ready-when:\n  serial: \"QSUP-GUEST READY\"");
        fx.writeVm("b", "depends-on: [a]");
        fx.writeVm("c", "ready-when:\n  serial: \"a line the guest never prints\"\nready-timeout: 3s");
        fx.writeVm("d", "depends-on: [c]");
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        sup.startup(); // returns once every autostart has ended one way or the other

        OptionalInt aReady = index(readyEvent("a"));
        OptionalInt bStarting = index(starting("b"));
        assertThat(aReady).as("VM_READY of a").isPresent();
        assertThat(bStarting).as("b's launch").isPresent();
        assertThat(bStarting.getAsInt()).as("b starts after a is ready, never before")
                .isGreaterThan(aReady.getAsInt());
        assertThat(sup.get("a").orElseThrow().ready()).isTrue();
        assertThat(sup.controller("b").orElseThrow().await(s -> s == VmState.RUNNING, BOOT))
                .isEqualTo(VmState.RUNNING);

        assertThat(index(e -> e.vm().equals("c") && e instanceof VmEvent.ReadyMissed)).as("c missed").isPresent();
        assertThat(sup.get("c").orElseThrow().state()).as("c itself runs on").isEqualTo(VmState.RUNNING);
        assertThat(sup.get("c").orElseThrow().ready()).isFalse();
        VmSnapshot d = sup.get("d").orElseThrow();
        assertThat(d.state()).isEqualTo(VmState.STOPPED);
        assertThat(index(starting("d"))).as("d never launched").isEmpty();
        assertThat(d.heldBack()).contains("dependency c did not become ready").contains("ready-timeout 3 s");
    }

    @Test
    void tcpReadinessWaitsForTheGuestToListenBehindTheHostfwd() throws Exception {
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        fx.writeVm("web", """
                networks:
                  - type: user
                    forwards:
                      - host-address: 127.0.0.1
                        host-port: %d
                        guest-port: 8080
                ready-when:
                  tcp: 127.0.0.1:%d
                autostart: false""".formatted(port, port));
        Supervisor sup = fx.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        VmController web = sup.controller("web").orElseThrow();
        sup.start("web").get(BOOT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);
        try (GuestConsole c = fx.readyConsole("web", BOOT)) {
            Thread.sleep(2000); // QEMU accepts on the host port, but nothing in the guest listens yet
            assertThat(web.ready()).as("not ready while the guest does not listen").isFalse();
            c.command("listen 8080", Duration.ofSeconds(30));
        }
        assertThat(web.readiness().get(20, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        assertThat(web.ready()).isTrue();
        assertThat(index(readyEvent("web"))).isPresent();
    }
}
