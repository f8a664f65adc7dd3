package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProcStatTest {

    @Test
    void commWithSpacesAndParenthesesDoesNotShiftFields() {
        String line = "4242 (qemu (x) y) Z 1 4240 4240 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        ProcStat s = ProcStat.parse(line);
        assertThat(s.pid()).isEqualTo(4242);
        assertThat(s.comm()).isEqualTo("qemu (x) y");
        assertThat(s.state()).isEqualTo('Z');
        assertThat(s.isDead()).isTrue();
        assertThat(s.ppid()).isEqualTo(1);
        assertThat(s.startTicks()).isEqualTo(98765);
    }

    @Test
    void garbageIsRejectedWithTheText() {
        assertThatThrownBy(() -> ProcStat.parse("hello")).hasMessageContaining("hello");
    }

    @Test
    void argvMustNameTheVmAndItsPaths() {
        Path pid = Path.of("/run/q/vms/web1/qemu.pid");
        Path qmp = Path.of("/run/q/vms/web1/qmp.sock");
        List<String> web1 = List.of("qemu-system-x86_64", "-name", "guest=web1,debug-threads=on",
                "-qmp", "unix:/run/q/vms/web1/qmp.sock,server=on,wait=off", "-daemonize", "-pidfile", pid.toString());
        assertThat(ProcessInspector.argvMatches(web1, "web1", pid, qmp)).isTrue();
        // same paths, other name: a reused pid of another VM must not match
        assertThat(ProcessInspector.argvMatches(web1, "web", pid, qmp)).isFalse();
        // right name, other paths (a second qsupd instance with another run-dir)
        assertThat(ProcessInspector.argvMatches(web1, "web1", Path.of("/other/qemu.pid"),
                Path.of("/other/qmp.sock"))).isFalse();
        // a path that merely starts with ours
        List<String> longer = List.of("qemu", "-name", "web1", "-qmp", "unix:/run/q/vms/web1/qmp.sock2,server=on");
        assertThat(ProcessInspector.argvMatches(longer, "web1", null, qmp)).isFalse();
        assertThat(ProcessInspector.argvMatches(List.of("sleep", "100"), "web1", pid, qmp)).isFalse();
        List<String> commaName = List.of("qemu", "-name", "guest=a,,b,debug-threads=on", "-pidfile", pid.toString());
        assertThat(ProcessInspector.argvMatches(commaName, "a,b", pid, qmp)).isTrue();
    }
}
