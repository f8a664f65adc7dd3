package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * Who may use the control socket, decided from the peer's credentials: root, the daemon's user, and members of the
 * control group, supplementary membership included, which qsupd learns from the peer's pid ({@code /proc/PID/status});
 * that pid is why the control socket's credentials come from junixsocket, since the JDK's SO_PEERCRED has none.
 */
class AccessPolicyTest {
    private static final long DAEMON_UID = 1000;
    private static final long NOBODY = 65534;
    private static final long USERS = 100;
    private final AccessPolicy policy = new AccessPolicy(DAEMON_UID, "users", OptionalLong.of(USERS));

    @Test
    void aUserOutsideTheGroupIsRefusedWithWhatToDo() {
        AccessPolicy.Decision d = policy.check(AccessPolicy.PeerCredentials.of(0, NOBODY, NOBODY, null));
        assertThat(d.allowed()).isFalse();
        assertThat(d.reason()).contains("access denied for uid 65534").contains("group 'users'")
                .contains("usermod -aG users");
    }

    @Test
    void rootTheDaemonsUserAndAMemberByPrimaryOrSupplementaryGroupAreServed() {
        assertThat(policy.check(AccessPolicy.PeerCredentials.of(0, 0, 0, null)).allowed()).isTrue();
        assertThat(policy.check(AccessPolicy.PeerCredentials.of(0, DAEMON_UID, DAEMON_UID, null)).allowed()).isTrue();
        assertThat(policy.check(AccessPolicy.PeerCredentials.of(0, NOBODY, USERS, null)).allowed()).isTrue();
        assertThat(policy.check(AccessPolicy.PeerCredentials.of(0, NOBODY, NOBODY, new long[] {USERS})).allowed())
                .isTrue();
    }

    @Test
    void theSupplementaryGroupsComeFromThePeersPid() throws Exception {
        // a peer process holding group 100 only as a supplementary group, as `usermod -aG` gives it
        Process peer;
        try {
            peer = new ProcessBuilder("setpriv", "--groups=" + USERS, "sleep", "30").start();
        } catch (java.io.IOException e) {
            org.junit.jupiter.api.Assumptions.abort("needs setpriv (util-linux): " + e.getMessage());
            return;
        }
        try {
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
            while (!groupsOf(peer.pid()).contains(" " + USERS) && peer.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(10); // until setpriv has set the groups and exec'd sleep
            }
            org.junit.jupiter.api.Assumptions.assumeTrue(peer.isAlive(), "setpriv --groups needs root");
            // SO_PEERCRED's own uid and gid say nothing of the group; the pid's /proc entry does
            assertThat(policy.check(AccessPolicy.PeerCredentials.of(peer.pid(), NOBODY, NOBODY, null)).allowed())
                    .isTrue();
            assertThat(policy.check(AccessPolicy.PeerCredentials.of(0, NOBODY, NOBODY, null)).allowed()).isFalse();
        } finally {
            peer.destroyForcibly();
            peer.waitFor();
        }
    }

    private static String groupsOf(long pid) {
        try {
            return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
                    .filter(l -> l.startsWith("Groups:")).findFirst().orElse("").replace('\t', ' ') + " ";
        } catch (java.io.IOException e) {
            return "";
        }
    }

    @Test
    void withoutTheGroupOnTheHostTheRefusalSaysSo() {
        AccessPolicy noGroup = new AccessPolicy(DAEMON_UID, "qsup", OptionalLong.empty());
        AccessPolicy.Decision d = noGroup.check(AccessPolicy.PeerCredentials.of(0, NOBODY, NOBODY, null));
        assertThat(d.allowed()).isFalse();
        assertThat(d.reason()).contains("group 'qsup' does not exist on this host");
    }
}
