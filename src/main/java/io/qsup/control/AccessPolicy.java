package io.qsup.control;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.OptionalLong;
import java.util.Set;

/**
 * Decides who may use the control socket: root, the daemon's own user, and members of the control group.
 *
 * <p>SO_PEERCRED carries only the peer's uid, primary gid and pid, so supplementary groups are read from
 * {@code /proc/PID/status} of the peer at accept time.
 */
public final class AccessPolicy {
    private final long daemonUid;
    private final OptionalLong groupGid;
    private final String groupName;

    public AccessPolicy(long daemonUid, String groupName, OptionalLong groupGid) {
        this.daemonUid = daemonUid;
        this.groupName = groupName;
        this.groupGid = groupGid;
    }

    /** The decision for one connection, with a reason a denied user can act on. */
    public record Decision(boolean allowed, String reason) {}

    public Decision check(PeerCredentials peer) {
        if (peer.uid() == 0) {
            return new Decision(true, "root");
        }
        if (peer.uid() == daemonUid) {
            return new Decision(true, "daemon user");
        }
        if (groupGid.isPresent() && peer.groups().contains(groupGid.getAsLong())) {
            return new Decision(true, "member of group " + groupName);
        }
        String how = groupGid.isPresent()
                ? "add the user to group '" + groupName + "' (usermod -aG " + groupName + " USER) and log in again"
                : "group '" + groupName + "' does not exist on this host; create it and add the user, or run as root";
        String unsure = peer.groupsProblem() == null ? ""
                : " (qsupd could not read the client's supplementary groups: " + peer.groupsProblem()
                        + "; if the user is in the group, try again)";
        return new Decision(false, "access denied for uid " + peer.uid() + ": only root and members of group '"
                + groupName + "' may use qsupd; " + how + unsure);
    }

    /**
     * Peer identity as seen through SO_PEERCRED plus the peer's supplementary groups; {@code groupsProblem} says why
     * those could not be read (for example no descriptor left to open /proc), null when they were.
     */
    public record PeerCredentials(long pid, long uid, Set<Long> groups, String groupsProblem) {
        public static PeerCredentials of(long pid, long uid, long gid, long[] gids) {
            Set<Long> all = new HashSet<>();
            all.add(gid);
            if (gids != null) {
                for (long g : gids) {
                    all.add(g);
                }
            }
            String problem = null;
            if (pid > 0) {
                try {
                    all.addAll(supplementaryGroups(pid));
                } catch (NoSuchFileException e) {
                    // the peer exited already; it has no groups worth granting
                } catch (IOException | NumberFormatException e) {
                    problem = e.toString();
                }
            }
            return new PeerCredentials(pid, uid, Set.copyOf(all), problem);
        }

        private static Set<Long> supplementaryGroups(long pid) throws IOException {
            Set<Long> out = new HashSet<>();
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith("Groups:")) {
                    for (String g : line.substring("Groups:".length()).trim().split("\\s+")) {
                        if (!g.isEmpty()) {
                            out.add(Long.parseLong(g));
                        }
                    }
                }
            }
            return out;
        }
    }
}
