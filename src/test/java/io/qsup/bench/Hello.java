package io.qsup.bench;

/** The JVM floor the CLI's figures are compared with: start, print a line, exit. */
public final class Hello {
    private Hello() {}

    public static void main(String[] args) {
        System.out.println("hello");
    }
}
