export declare const NODE_FLOOR: string;
export declare function nodeFloorProblem(version: string): string | undefined;
