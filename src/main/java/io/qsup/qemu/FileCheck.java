package io.qsup.qemu;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Answers whether a file a definition refers to (disk, kernel, firmware) can be opened; validation asks it
 * instead of the file system so tests can describe a host without creating its files.
 */
@FunctionalInterface
public interface FileCheck {

    /** Null when {@code file} exists as a readable regular file or device, else what is wrong with it. */
    String problem(Path file);

    /** Checks the real file system. */
    static FileCheck real() {
        return file -> {
            if (!Files.exists(file)) {
                return "does not exist";
            }
            if (Files.isDirectory(file)) {
                return "is a directory, not a file";
            }
            if (!Files.isReadable(file)) {
                return "is not readable by this user";
            }
            return null;
        };
    }

    /** Pretends every file exists: for describing a host in tests. */
    static FileCheck allPresent() {
        return file -> null;
    }
}
