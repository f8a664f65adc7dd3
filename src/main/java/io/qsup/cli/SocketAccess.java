package io.qsup.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Tells a failed connect to qsupd's control socket that was refused by file permissions (EACCES) from a daemon that is
 * not there, by looking at the path the way the kernel does: connecting needs search permission on every folder above
 * the socket and write permission on the socket itself. Looking, rather than reading the error text, works in every
 * locale.
 */
final class SocketAccess {
    private SocketAccess() {}

    /** What to tell a user whom permissions keep from {@code socket}, or null when permissions are not the problem. */
    static String deniedMessage(Path socket) {
        Path abs = socket.toAbsolutePath().normalize();
        Path root = abs.getRoot();
        Path dir = root;
        for (Path part : abs.getParent() == null ? Path.of("") : root.relativize(abs.getParent())) {
            dir = dir.resolve(part);
            if (!Files.isDirectory(dir)) {
                return null; // a missing folder: nothing is served there
            }
            if (!Files.isExecutable(dir)) {
                return "permission denied on qsupd's control socket " + abs + ": you may not enter the folder " + dir
                        + describe(dir) + ". Run qsup as root (sudo qsup ...), or ask an administrator to let the"
                        + " control group through that folder (for example chmod o+x " + dir + ").";
            }
        }
        if (!Files.exists(abs) || Files.isWritable(abs)) {
            return null;
        }
        String group = group(abs);
        String who = group != null ? "root and members of group '" + group + "'" : "root and the socket's group";
        String g = group != null ? group : "GROUP";
        return "permission denied on qsupd's control socket " + abs + describe(abs) + ": only " + who
                + " may use it. Run qsup as root (sudo qsup ...), or join the group: sudo usermod -aG " + g
                + " $USER, then log in again (or run 'newgrp " + g + "' in this shell) so that the group applies.";
    }

    private static String group(Path p) {
        try {
            return Files.readAttributes(p, PosixFileAttributes.class).group().getName();
        } catch (IOException | UnsupportedOperationException e) {
            return null;
        }
    }

    /** " (srw-rw---- root:qsup)", or nothing when the attributes cannot be read. */
    private static String describe(Path p) {
        try {
            PosixFileAttributes a = Files.readAttributes(p, PosixFileAttributes.class);
            char type = a.isDirectory() ? 'd' : a.isOther() ? 's' : '-';
            return " (" + type + PosixFilePermissions.toString(a.permissions()) + " " + a.owner().getName() + ":"
                    + a.group().getName() + ")";
        } catch (IOException | UnsupportedOperationException e) {
            return "";
        }
    }
}
